// The hint the CLI adds to an UNAVAILABLE that a TLS mismatch caused.
#include "client/connection_hint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor::client {
namespace {

using ::testing::HasSubstr;

TEST(ConnectionHintTest, UnknownCaNamesTlsCa) {
  EXPECT_THAT(ConnectionHint("failed to connect to all addresses; last error: UNKNOWN: "
                             "ipv4:127.0.0.1:5: Ssl handshake failed: SSL_ERROR_SSL: "
                             "error:0A000086:SSL routines::certificate verify failed"),
              HasSubstr("--tls-ca"));
}

TEST(ConnectionHintTest, NameMismatchNamesTlsServerName) {
  EXPECT_THAT(ConnectionHint("Peer name other is not in peer certificate"),
              HasSubstr("--tls-server-name"));
  EXPECT_THAT(ConnectionHint("failed to connect to all addresses; last error: UNKNOWN: "
                             "ipv4:127.0.0.1:36101: Custom verification check failed with "
                             "error: UNAUTHENTICATED: Hostname Verification Check failed."),
              HasSubstr("--tls-server-name"));
}

TEST(ConnectionHintTest, MissingClientCertificateNamesTlsCert) {
  EXPECT_THAT(ConnectionHint("Ssl handshake failed: SSL_ERROR_SSL: error:0A00045C:SSL "
                             "routines::tlsv13 alert certificate required"),
              HasSubstr("--tls-cert and --tls-key"));
}

TEST(ConnectionHintTest, PlaintextServerNamesInsecure) {
  EXPECT_THAT(ConnectionHint("Ssl handshake failed: SSL_ERROR_SSL: error:0A00010B:SSL "
                             "routines::wrong version number"),
              HasSubstr("--insecure"));
}

TEST(ConnectionHintTest, ServerThatIsDownGetsNoHint) {
  EXPECT_EQ(ConnectionHint("failed to connect to all addresses; last error: UNAVAILABLE: "
                           "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection "
                           "refused"),
            "");
}

}  // namespace
}  // namespace conveyor::client
