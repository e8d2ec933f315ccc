// The hint the CLI adds to an UNAVAILABLE that a TLS mismatch caused, and to
// UNAUTHENTICATED / PERMISSION_DENIED: which token was sent, or none.
#include "client/connection_hint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace conveyor::client {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

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

TEST(UnauthenticatedHintTest, WithoutTokenSaysHowToGiveOne) {
  const std::string hint =
      UnauthenticatedHint({TokenOrigin::kNone, "/home/u/.config/conveyor/token"});
  EXPECT_THAT(hint,
              AllOf(StartsWith("hint: no token was sent"), HasSubstr("--token"),
                    HasSubstr("CONVEYOR_TOKEN"), HasSubstr("--token-file"),
                    HasSubstr("/home/u/.config/conveyor/token"), HasSubstr("conveyor token new")));
  // Without HOME the usual spelling of the default file.
  EXPECT_THAT(UnauthenticatedHint({TokenOrigin::kNone, ""}), HasSubstr("~/.config/conveyor/token"));
}

TEST(UnauthenticatedHintTest, WithTokenNamesItsSource) {
  EXPECT_THAT(UnauthenticatedHint({TokenOrigin::kFlagFile, "/etc/cv/token"}),
              AllOf(StartsWith("hint: the server did not accept the token from --token-file "
                               "/etc/cv/token"),
                    HasSubstr("tokens file")));
  EXPECT_THAT(UnauthenticatedHint({TokenOrigin::kEnv, ""}), HasSubstr("from CONVEYOR_TOKEN "));
}

TEST(PermissionDeniedHintTest, NamesTheScopeTheServerNamed) {
  EXPECT_THAT(PermissionDeniedHint("caller alice lacks scope chains.cancel",
                                   {TokenOrigin::kDefaultFile, "/h/.config/conveyor/token"}),
              AllOf(StartsWith("hint: the token from the default token file "
                               "/h/.config/conveyor/token lacks scope chains.cancel"),
                    HasSubstr("tokens file")));
  EXPECT_THAT(PermissionDeniedHint("scope \"admin\" required", {TokenOrigin::kFlag, ""}),
              HasSubstr("lacks scope admin"));
  EXPECT_THAT(PermissionDeniedHint("missing scope chains.submit", {TokenOrigin::kNone, ""}),
              AllOf(StartsWith("hint: no token was sent"), HasSubstr("client certificate"),
                    HasSubstr("scope chains.submit"), HasSubstr("--token")));
  // The orchestrator's own words (orchestrator/auth/scope_check.cc): the
  // scope needed first, then the caller's.
  EXPECT_THAT(PermissionDeniedHint("this call needs scope \"chains.cancel\"; principal \"bob\" has "
                                   "chains.submit,chains.read",
                                   {TokenOrigin::kFlag, ""}),
              HasSubstr("lacks scope chains.cancel"));
}

TEST(PermissionDeniedHintTest, NoScopeNamedNoHint) {
  EXPECT_EQ(PermissionDeniedHint("a caller of tenant * owns no chains", {TokenOrigin::kFlag, ""}),
            "");
  // Whole words only: neither is a scope.
  EXPECT_EQ(
      PermissionDeniedHint("ask an administrator about chains.readers", {TokenOrigin::kFlag, ""}),
      "");
}

TEST(PermissionDeniedHintTest, FirstScopeNamedWins) {
  EXPECT_THAT(
      PermissionDeniedHint("needs chains.cancel; token has chains.read", {TokenOrigin::kFlag, ""}),
      HasSubstr("lacks scope chains.cancel"));
}

}  // namespace
}  // namespace conveyor::client
