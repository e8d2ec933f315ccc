// JWT verification with keys and tokens made in the test (tests/testing/
// test_jwt.h): RS256 and ES256, PEM and JWKS, and every refusal.
#include "orchestrator/auth/jwt_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/testing/test_jwt.h"

namespace conveyor::orchestrator::auth {
namespace {

using ::conveyor::testing::Jwks;
using ::conveyor::testing::TestSigningKey;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);
const JwtPolicy kPolicy{"https://id.example", "conveyor", absl::Seconds(30)};

// The claims of a good token, with `extra` (",\"k\":v" pairs) or overrides.
std::string Claims(const std::string& extra = "", int64_t exp_offset_s = 300,
                   const std::string& iss = kPolicy.issuer,
                   const std::string& aud = "\"conveyor\"") {
  return absl::StrCat(R"({"sub":"alice","tenant":"tenant-a","iss":")", iss, R"(","aud":)", aud,
                      R"(,"exp":)", absl::ToUnixSeconds(kNow) + exp_offset_s, R"(,"iat":)",
                      absl::ToUnixSeconds(kNow) - 10,
                      R"(,"scope":"openid chains.read chains.submit")", extra, "}");
}

JwtKeySet Keys(const std::string& text) {
  absl::StatusOr<JwtKeySet> keys = ParseJwtKeys(text, "keys.pem");
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.ok() ? *keys : JwtKeySet{};
}

class JwtVerifierTest : public ::testing::Test {
 protected:
  // Made once: RSA key generation takes a while.
  static void SetUpTestSuite() {
    rsa_ = new TestSigningKey(TestSigningKey::Rsa());
    ec_ = new TestSigningKey(TestSigningKey::Ec());
    other_ = new TestSigningKey(TestSigningKey::Rsa());
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
    delete other_;
  }

  absl::Status Refusal(const std::string& token, const JwtKeySet& keys) {
    absl::StatusOr<Caller> caller = VerifyJwt(token, keys, kPolicy, kNow);
    EXPECT_FALSE(caller.ok());
    if (caller.ok()) return absl::OkStatus();
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << caller.status();
    EXPECT_THAT(caller.status().message(), Not(HasSubstr(token.substr(0, 20))));
    return caller.status();
  }

  static TestSigningKey* rsa_;
  static TestSigningKey* ec_;
  static TestSigningKey* other_;
};
TestSigningKey* JwtVerifierTest::rsa_ = nullptr;
TestSigningKey* JwtVerifierTest::ec_ = nullptr;
TestSigningKey* JwtVerifierTest::other_ = nullptr;

TEST_F(JwtVerifierTest, Rs256WithAPemKeyIsTheSubjectsCaller) {
  const std::string token = rsa_->Sign(R"({"alg":"RS256","typ":"JWT"})", Claims());
  absl::StatusOr<Caller> caller = VerifyJwt(token, Keys(rsa_->PublicPem()), kPolicy, kNow);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "alice");
  EXPECT_EQ(caller->tenant, "tenant-a");
  EXPECT_EQ(caller->scopes, Scopes().Add(Scope::kRead).Add(Scope::kSubmit));
}

TEST_F(JwtVerifierTest, Es256WithAJwksKeyAndScpArray) {
  const JwtKeySet keys = Keys(Jwks({rsa_->Jwk("r1"), ec_->Jwk("e1")}));
  ASSERT_EQ(keys.keys.size(), 2u);
  const std::string token =
      ec_->Sign(R"({"alg":"ES256","kid":"e1"})",
                absl::StrCat(R"({"sub":"ci","tenant":"*","iss":"https://id.example",)",
                             R"("aud":["other","conveyor"],"exp":)", absl::ToUnixSeconds(kNow) + 60,
                             R"(,"scp":["chains.cancel","admin","unknown"]})"));
  absl::StatusOr<Caller> caller = VerifyJwt(token, keys, kPolicy, kNow);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "ci");
  EXPECT_TRUE(caller->all_tenants());
  EXPECT_EQ(caller->scopes, Scopes().Add(Scope::kCancel).Add(Scope::kAdmin));
}

TEST_F(JwtVerifierTest, KidSelectsTheKeyAndAnUnknownKidIsRefused) {
  const JwtKeySet keys = Keys(Jwks({other_->Jwk("k1"), rsa_->Jwk("k2")}));
  EXPECT_TRUE(
      VerifyJwt(rsa_->Sign(R"({"alg":"RS256","kid":"k2"})", Claims()), keys, kPolicy, kNow).ok());
  // Signed by k2's key but naming k1: k1 is tried, and fails.
  EXPECT_THAT(Refusal(rsa_->Sign(R"({"alg":"RS256","kid":"k1"})", Claims()), keys).message(),
              HasSubstr("signature does not verify"));
  EXPECT_THAT(Refusal(rsa_->Sign(R"({"alg":"RS256","kid":"k9"})", Claims()), keys).message(),
              HasSubstr("kid \"k9\" is not in --jwt-keys"));
}

TEST_F(JwtVerifierTest, WrongKeyIsABadSignature) {
  const std::string token = other_->Sign(R"({"alg":"RS256"})", Claims());
  EXPECT_THAT(Refusal(token, Keys(rsa_->PublicPem())).message(),
              HasSubstr("signature does not verify"));
  // A token whose claims were edited after signing.
  const std::string good = rsa_->Sign(R"({"alg":"RS256"})", Claims());
  const size_t dot = good.find('.');
  const std::string edited = absl::StrCat(
      good.substr(0, dot + 1),
      ::conveyor::testing::Base64Url(absl::StrReplaceAll(Claims(), {{"alice", "admin"}})),
      good.substr(good.rfind('.')));
  EXPECT_THAT(Refusal(edited, Keys(rsa_->PublicPem())).message(),
              HasSubstr("signature does not verify"));
}

TEST_F(JwtVerifierTest, ExpiredNotYetValidAndIssuedInTheFutureAreRefused) {
  const JwtKeySet keys = Keys(rsa_->PublicPem());
  const std::string header = R"({"alg":"RS256"})";
  EXPECT_THAT(Refusal(rsa_->Sign(header, Claims("", -31)), keys).message(), HasSubstr("expired"));
  // Within the 30 s leeway.
  EXPECT_TRUE(VerifyJwt(rsa_->Sign(header, Claims("", -29)), keys, kPolicy, kNow).ok());
  const std::string nbf = absl::StrCat(",\"nbf\":", absl::ToUnixSeconds(kNow) + 120);
  EXPECT_THAT(Refusal(rsa_->Sign(header, Claims(nbf)), keys).message(), HasSubstr("(nbf)"));
  const std::string iat_future = absl::StrCat(
      R"({"sub":"a","tenant":"t","iss":"https://id.example","aud":"conveyor","exp":)",
      absl::ToUnixSeconds(kNow) + 900, R"(,"iat":)", absl::ToUnixSeconds(kNow) + 600, "}");
  EXPECT_THAT(Refusal(rsa_->Sign(header, iat_future), keys).message(), HasSubstr("(iat)"));
  const std::string no_exp =
      R"({"sub":"a","tenant":"t","iss":"https://id.example","aud":"conveyor"})";
  EXPECT_THAT(Refusal(rsa_->Sign(header, no_exp), keys).message(), HasSubstr("no \"exp\""));
}

TEST_F(JwtVerifierTest, WrongIssuerOrAudienceIsRefused) {
  const JwtKeySet keys = Keys(rsa_->PublicPem());
  const std::string header = R"({"alg":"RS256"})";
  EXPECT_THAT(Refusal(rsa_->Sign(header, Claims("", 300, "https://evil.example")), keys).message(),
              HasSubstr("issuer is not --jwt-issuer"));
  EXPECT_THAT(
      Refusal(rsa_->Sign(header, Claims("", 300, kPolicy.issuer, "\"other\"")), keys).message(),
      HasSubstr("audience does not include --jwt-audience"));
  EXPECT_THAT(
      Refusal(rsa_->Sign(header, Claims("", 300, kPolicy.issuer, "[\"a\",\"b\"]")), keys).message(),
      HasSubstr("audience"));
}

TEST_F(JwtVerifierTest, AlgNoneAndHs256AreRefused) {
  const JwtKeySet keys = Keys(rsa_->PublicPem());
  const std::string none = ::conveyor::testing::UnsignedJwt(R"({"alg":"none"})", Claims());
  // Three parts with an empty signature: not even a JWT's shape.
  EXPECT_FALSE(VerifyJwt(none, keys, kPolicy, kNow).ok());
  EXPECT_THAT(Refusal(none + "AAAA", keys).message(), HasSubstr("alg \"none\" is refused"));
  // HS256 keyed with the public key's text: the classic confusion attack.
  const std::string hs =
      ::conveyor::testing::Hs256Jwt(R"({"alg":"HS256"})", Claims(), rsa_->PublicPem());
  EXPECT_THAT(Refusal(hs, keys).message(), HasSubstr("alg \"HS256\" is refused"));
  // An RSA key does not verify ES256, whatever the header says.
  EXPECT_THAT(Refusal(rsa_->Sign(R"({"alg":"ES256"})", Claims()), keys).message(),
              HasSubstr("no EC P-256 key"));
}

TEST_F(JwtVerifierTest, ClaimsThatMakeNoCallerAreRefused) {
  const JwtKeySet keys = Keys(rsa_->PublicPem());
  const std::string header = R"({"alg":"RS256"})";
  const int64_t exp = absl::ToUnixSeconds(kNow) + 60;
  EXPECT_THAT(
      Refusal(rsa_->Sign(header, absl::StrCat(R"({"tenant":"t","iss":"https://id.example",)",
                                              R"("aud":"conveyor","exp":)", exp, "}")),
              keys)
          .message(),
      HasSubstr("\"sub\""));
  EXPECT_THAT(Refusal(rsa_->Sign(header, absl::StrCat(R"({"sub":"a","iss":"https://id.example",)",
                                                      R"("aud":"conveyor","exp":)", exp, "}")),
                      keys)
                  .message(),
              HasSubstr("\"tenant\""));
  EXPECT_THAT(Refusal(rsa_->Sign(R"({"alg":"RS256","crit":["x"]})", Claims()), keys).message(),
              HasSubstr("crit"));
  EXPECT_THAT(Refusal("YQ.YQ.YQ", keys).message(), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(Refusal("a.b.c", keys).message(), HasSubstr("header is not base64url"));
  EXPECT_THAT(Refusal("a.b", keys).message(), HasSubstr("three dot-separated"));
}

TEST_F(JwtVerifierTest, KeysFilesParseAndRefuseWhatIsNoPublicSigningKey) {
  const JwtKeySet both = Keys(rsa_->PublicPem() + "\n" + ec_->PublicPem());
  ASSERT_EQ(both.keys.size(), 2u);
  EXPECT_EQ(both.keys[0].algorithm, JwtAlgorithm::kRs256);
  EXPECT_EQ(both.keys[1].algorithm, JwtAlgorithm::kEs256);
  // JWKS: an encryption key and a symmetric key are skipped.
  const JwtKeySet skipped = Keys(
      Jwks({R"({"kty":"oct","k":"c2VjcmV0"})",
            absl::StrReplaceAll(other_->Jwk("enc"), {{"\"sig\"", "\"enc\""}}), ec_->Jwk("e1")}));
  ASSERT_EQ(skipped.keys.size(), 1u);
  EXPECT_EQ(skipped.keys[0].kid, "e1");

  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "no PEM public key"},
           {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "a private key"},
           {"{\"keys\": 3}", "\"keys\" array"},
           {"{not json", "not valid JSON"},
           {Jwks({R"({"kty":"oct","k":"c2VjcmV0"})"}), "no RS256"},
           {Jwks({R"({"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"})"}), "a private key"},
           {Jwks({R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})"}), "keys[0]"},
           {TestSigningKey::Rsa(1024).PublicPem(), "want at least 2048"},
       }) {
    absl::StatusOr<JwtKeySet> keys = ParseJwtKeys(c.text, "keys");
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(keys.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(Base64UrlTest, DecodesUnpaddedAndRefusesOtherAlphabets) {
  std::string out;
  EXPECT_TRUE(Base64UrlDecode("aGk", &out));
  EXPECT_EQ(out, "hi");
  EXPECT_TRUE(Base64UrlDecode("-_8", &out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(Base64UrlDecode("+/8", &out));
  EXPECT_FALSE(Base64UrlDecode("aGk=", &out));
  EXPECT_FALSE(Base64UrlDecode("a", &out));
}

}  // namespace
}  // namespace conveyor::orchestrator::auth
