// The dashboard's JSON (protobuf's mapping, escaped) and its list filters.
#include "orchestrator/dashboard/dashboard_json.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "common/proto_time.h"

namespace conveyor::orchestrator::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &out).ok()) << json;
  return out;
}

TEST(ToJsonTest, IncludesDefaultsAndNamesEnums) {
  conveyor::v1::Chain chain;
  chain.set_name("chains/0123456789abcdef0123456789abcdef");
  chain.set_state(conveyor::v1::FAILED);
  chain.add_steps()->set_kind(conveyor::v1::STAGE_KIND_RESIZE);
  const std::string json = ToJson(chain);
  EXPECT_THAT(json, HasSubstr("\"state\":\"FAILED\""));
  EXPECT_THAT(json, HasSubstr("\"index\":0"));  // step 0 is not left out
  EXPECT_THAT(json, HasSubstr("\"kind\":\"STAGE_KIND_RESIZE\""));
  EXPECT_THAT(json, HasSubstr("\"progressPercent\":0"));
}

TEST(ToJsonTest, UserTextIsEscapedJson) {
  conveyor::v1::Chain chain;
  (*chain.mutable_spec()->mutable_labels())["team"] = "</script><img src=x onerror=alert(1)>\"";
  const std::string json = ToJson(chain);
  // The JSON round-trips to the same text; the page puts it in as text.
  google::protobuf::Struct parsed = Parse(json);
  EXPECT_EQ(parsed.fields()
                .at("spec")
                .struct_value()
                .fields()
                .at("labels")
                .struct_value()
                .fields()
                .at("team")
                .string_value(),
            "</script><img src=x onerror=alert(1)>\"");
  EXPECT_THAT(json, Not(HasSubstr("<")));  // protobuf escapes < and > as \u003c
}

TEST(ErrorJsonTest, CodeAndMessage) {
  google::protobuf::Struct e = Parse(ErrorJson(absl::NotFoundError("chain \"x\" not found")));
  EXPECT_EQ(e.fields().at("code").string_value(), "NOT_FOUND");
  EXPECT_EQ(e.fields().at("message").string_value(), "chain \"x\" not found");
  // The same error is the same bytes.
  EXPECT_EQ(ErrorJson(absl::NotFoundError("chain \"x\" </b> not found")),
            R"({"code":"NOT_FOUND","message":"chain \"x\" \u003c/b\u003e not found"})");
}

TEST(CallerJsonTest, NamesTheScopes) {
  Caller caller{"bob", "tenant-a", Scopes().Add(Scope::kRead).Add(Scope::kCancel)};
  google::protobuf::Struct c = Parse(CallerJson(caller));
  EXPECT_EQ(c.fields().at("principal").string_value(), "bob");
  EXPECT_EQ(c.fields().at("tenant").string_value(), "tenant-a");
  ASSERT_EQ(c.fields().at("scopes").list_value().values_size(), 2);
  EXPECT_EQ(c.fields().at("scopes").list_value().values(0).string_value(), "chains.read");
  EXPECT_EQ(c.fields().at("scopes").list_value().values(1).string_value(), "chains.cancel");
}

TEST(ParseChainQueryTest, EveryFilter) {
  QueryParams q = {{"state", "failed"},
                   {"label", "team=vision"},
                   {"label", "env=a=b"},
                   {"stage", "Resize"},
                   {"error", "UNAVAILABLE"},
                   {"since", "1h"},
                   {"until", "2025-12-31T23:30:00Z"},
                   {"ended_since", "30m"},
                   {"page_size", "20"},
                   {"page_token", "abc"},
                   {"ended_until", ""}};
  absl::StatusOr<conveyor::v1::ListChainsRequest> r = ParseChainQuery(q, kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), conveyor::v1::FAILED);
  EXPECT_EQ(r->labels().at("team"), "vision");
  EXPECT_EQ(r->labels().at("env"), "a=b");
  EXPECT_EQ(r->stage(), conveyor::v1::STAGE_KIND_RESIZE);
  EXPECT_EQ(r->error_reason(), "UNAVAILABLE");
  EXPECT_EQ(FromProtoTime(r->create_time_after()), kNow - absl::Hours(1));
  EXPECT_EQ(FromProtoTime(r->create_time_before()), kNow - absl::Minutes(30));
  EXPECT_EQ(FromProtoTime(r->end_time_after()), kNow - absl::Minutes(30));
  EXPECT_FALSE(r->has_end_time_before());  // empty value: no filter
  EXPECT_EQ(r->page_size(), 20);
  EXPECT_EQ(r->page_token(), "abc");
}

TEST(ParseChainQueryTest, NoParametersIsEverything) {
  absl::StatusOr<conveyor::v1::ListChainsRequest> r = ParseChainQuery({}, kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ByteSizeLong(), 0u);
}

TEST(ParseChainQueryTest, BadValuesNameTheParameter) {
  const std::pair<QueryParams, std::string> cases[] = {
      {{{"state", "DONE"}}, "state"},          {{{"state", "STATE_UNSPECIFIED"}}, "state"},
      {{{"label", "novalue"}}, "label"},       {{{"label", "=v"}}, "label"},
      {{{"stage", "crop"}}, "stage"},          {{{"since", "yesterday"}}, "since"},
      {{{"since", "-1h"}}, "since"},           {{{"page_size", "many"}}, "page_size"},
      {{{"stat", "FAILED"}}, "stat: unknown"},
  };
  for (const auto& [params, field] : cases) {
    absl::StatusOr<conveyor::v1::ListChainsRequest> r = ParseChainQuery(params, kNow);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(r.status().message(), HasSubstr(field));
  }
}

TEST(ParseLoginBodyTest, TakesTheToken) {
  EXPECT_EQ(*ParseLoginBody("{\"token\": \"abc\"}"), "abc");
  for (const std::string body : {"", "abc", "{\"token\": 3}", "{\"tok\": \"abc\"}", "[]"}) {
    absl::StatusOr<std::string> t = ParseLoginBody(body);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

}  // namespace
}  // namespace conveyor::orchestrator::dashboard
