#include "client/batch_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor::client {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(BatchFormatTest, BatchSummaryListsFailuresWithReasons) {
  std::vector<BatchItemResult> items(3);
  items[0] = {"http://127.0.0.1/a.jpg", "chains/a", true, "", absl::Milliseconds(300)};
  items[1] = {"http://127.0.0.1/b.jpg", "chains/b", false, "NOT_FOUND: HTTP 404",
              absl::Milliseconds(50)};
  items[2] = {"/nope.jpg", "", false, "cannot read /nope.jpg", absl::ZeroDuration()};
  EXPECT_EQ(FormatBatchSummary(items, absl::Seconds(2)),
            "\n3 chains: 1 succeeded, 2 failed in 2.00s (1.50 chains/s)\n"
            "Failed:\n"
            "  http://127.0.0.1/b.jpg: NOT_FOUND: HTTP 404\n"
            "  /nope.jpg: cannot read /nope.jpg\n");
  EXPECT_EQ(FormatBatchItem(items[0]), "ok    http://127.0.0.1/a.jpg  chains/a  300ms");
  EXPECT_EQ(FormatBatchItem(items[1]),
            "FAIL  http://127.0.0.1/b.jpg  chains/b  NOT_FOUND: HTTP 404");
  EXPECT_EQ(FormatBatchProgress(2, 4, 1, 1, 2, 4), "[##..]  50%  2/4  ok 1  failed 1  running 2");
}
}  // namespace
}  // namespace conveyor::client
