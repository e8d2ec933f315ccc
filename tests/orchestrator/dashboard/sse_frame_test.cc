#include "orchestrator/dashboard/sse_frame.h"

#include <gtest/gtest.h>

namespace conveyor::orchestrator::dashboard {
namespace {

TEST(SseFrameTest, OneDataLinePerLine) {
  EXPECT_EQ(SseFrame("chain", "{\"a\":1}"), "event: chain\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(SseFrame("x", "one\ntwo\r\nthree\rfour", "7-1"),
            "id: 7-1\nevent: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
}

TEST(SseFrameTest, NewlinesCannotForgeFields) {
  // Data that looks like a field stays inside data: lines.
  EXPECT_EQ(SseFrame("chain", "x\n\nevent: end"),
            "event: chain\ndata: x\ndata: \ndata: event: end\n\n");
  EXPECT_EQ(SseFrame("ch\nain", "d", "1\r\nevent: end"),
            "id: 1event: end\nevent: chain\ndata: d\n\n");
}

TEST(SseFrameTest, CommentIsIgnoredByEventSource) { EXPECT_EQ(SseComment()[0], ':'); }

}  // namespace
}  // namespace conveyor::orchestrator::dashboard
