// The assertion the tests of the CLI's flag parsers share.
#ifndef CONVEYOR_TESTS_CLIENT_EXPECT_FLAG_ERROR_H_
#define CONVEYOR_TESTS_CLIENT_EXPECT_FLAG_ERROR_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"

namespace conveyor::client {

// Asserts INVALID_ARGUMENT whose message starts with `flag` and contains `detail`.
inline void ExpectFlagError(const absl::Status& status, const std::string& flag,
                            const std::string& detail) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::StartsWith(flag + ": "));
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(detail));
}

}  // namespace conveyor::client

#endif  // CONVEYOR_TESTS_CLIENT_EXPECT_FLAG_ERROR_H_
