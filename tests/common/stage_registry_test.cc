// The stage registry against the rest of the tree: every row has its
// messages, its worker binary, its Dockerfile stage, its Kubernetes manifest,
// its compose service and its dev-up entry, and every Step arm has a row.
// This is what keeps docs/architecture.md's "How to add a stage" honest.
#include "common/stage_registry.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/stage_table.h"
#include "conveyor/v1/stages.pb.h"

namespace conveyor {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

std::string ReadSource(const std::string& relative) {
  std::ifstream in(absl::StrCat(CONVEYOR_SOURCE_DIR, "/", relative));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The message type of a field of `type` that has message type `field_type`.
bool HasFieldOfType(const Descriptor* type, const Descriptor* field_type) {
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->message_type() == field_type) return true;
  }
  return false;
}

TEST(StageRegistryTest, EveryStepArmHasExactlyOneStage) {
  const google::protobuf::OneofDescriptor* kind = v1::Step::descriptor()->FindOneofByName("kind");
  ASSERT_NE(kind, nullptr);
  std::set<int> arms;
  for (int i = 0; i < kind->field_count(); ++i) arms.insert(kind->field(i)->number());
  std::set<int> registered;
  std::set<std::string> names;
  std::set<int> ports;
  for (const StageInfo& stage : Stages()) {
    EXPECT_TRUE(registered.insert(stage.step_case).second) << stage.name;
    EXPECT_TRUE(names.insert(std::string(stage.name)).second) << stage.name;
    EXPECT_TRUE(ports.insert(stage.default_port).second) << stage.name;
    EXPECT_EQ(FindStage(stage.kind), &stage);
    EXPECT_EQ(FindStageByName(stage.name), &stage);
    const FieldDescriptor* arm = v1::Step::descriptor()->FindFieldByNumber(stage.step_case);
    ASSERT_NE(arm, nullptr) << stage.name;
    EXPECT_EQ(arm->name(), stage.name) << "the Step arm is named after its stage";
    EXPECT_NE(stage.check_spec, nullptr) << stage.name;
  }
  EXPECT_EQ(registered, arms);
  EXPECT_EQ(StageName(v1::STAGE_KIND_UNSPECIFIED), "unspecified");
}

TEST(StageRegistryTest, EveryStageMethodCarriesWhatTheRegistrySays) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const Descriptor* outputs = v1::StepOutput::descriptor();
  for (const StageInfo& stage : Stages()) {
    SCOPED_TRACE(stage.name);
    const google::protobuf::ServiceDescriptor* service =
        pool->FindServiceByName(std::string(stage.service));
    ASSERT_NE(service, nullptr);
    const google::protobuf::MethodDescriptor* method =
        service->FindMethodByName(std::string(stage.method));
    ASSERT_NE(method, nullptr);
    const Descriptor* request = method->input_type();
    const FieldDescriptor* arm = v1::Step::descriptor()->FindFieldByNumber(stage.step_case);
    EXPECT_TRUE(HasFieldOfType(request, v1::StepContext::descriptor()));
    EXPECT_TRUE(HasFieldOfType(request, arm->message_type()));
    EXPECT_EQ(HasFieldOfType(request, v1::Image::descriptor()), stage.consumes == DataKind::kImage);
    EXPECT_EQ(HasFieldOfType(request, v1::ChainReport::descriptor()), stage.reports_outputs);
    // The response carries the step's output: an Image, or one of StepOutput's arms.
    bool has_output = HasFieldOfType(method->output_type(), v1::Image::descriptor());
    for (int k = 0; k < outputs->field_count(); ++k) {
      has_output = has_output || HasFieldOfType(method->output_type(), outputs->field(k)->message_type());
    }
    EXPECT_TRUE(has_output);
  }
}

TEST(StageRegistryTest, EveryStageHasAWorkerADeploymentAndADevUpEntry) {
  const std::string dockerfile = ReadSource("deploy/Dockerfile");
  const std::string compose = ReadSource("deploy/compose.yaml");
  const std::string kustomization = ReadSource("deploy/k8s/kustomization.yaml");
  const std::string dev_up = ReadSource("tools/dev-up.sh");
  // The words of stages/CMakeLists.txt's set(CONVEYOR_STAGES ...) line.
  const std::string stages_cmake = ReadSource("stages/CMakeLists.txt");
  const size_t list_at = stages_cmake.find("set(CONVEYOR_STAGES ");
  ASSERT_NE(list_at, std::string::npos);
  const std::string list_line =
      stages_cmake.substr(list_at, stages_cmake.find(')', list_at) - list_at);
  const std::vector<std::string> stage_folders = absl::StrSplit(list_line, ' ');
  for (const StageInfo& stage : Stages()) {
    SCOPED_TRACE(stage.name);
    const std::string binary = absl::StrCat("conveyor-", stage.name);
    EXPECT_EQ(access(absl::StrCat(CONVEYOR_BIN_DIR, "/", binary).c_str(), X_OK), 0)
        << binary << " was not built";
    EXPECT_NE(std::find(stage_folders.begin(), stage_folders.end(), stage.name),
              stage_folders.end())
        << "stages/CMakeLists.txt: CONVEYOR_STAGES";
    EXPECT_TRUE(absl::StrContains(dockerfile, absl::StrCat("/build/bin/", binary, " ")));
    EXPECT_TRUE(absl::StrContains(compose, absl::StrCat("\n  ", stage.name, ":\n")));
    EXPECT_TRUE(absl::StrContains(compose, absl::StrCat(stage.name, ":", stage.default_port)));
    const std::string manifest = ReadSource(absl::StrCat("deploy/k8s/", stage.name, ".yaml"));
    EXPECT_TRUE(absl::StrContains(manifest, binary)) << "deploy/k8s/" << stage.name << ".yaml";
    EXPECT_TRUE(absl::StrContains(kustomization, absl::StrCat(stage.name, ".yaml")));
    EXPECT_TRUE(absl::StrContains(dev_up, absl::StrCat("start_server ", binary, " ")));
  }
}

TEST(StageRegistryTest, ArchitectureDocShowsTheRegistrysTable) {
  const std::string doc = ReadSource("docs/architecture.md");
  absl::StatusOr<std::string> regenerated = WithStageTable(doc);
  ASSERT_TRUE(regenerated.ok()) << regenerated.status();
  EXPECT_EQ(*regenerated, doc)
      << "docs/architecture.md's stage table is not the registry's: run "
         "build/bin/conveyor-stage-table --write docs/architecture.md";
  EXPECT_NE(StageTableMarkdown().find("| resize | `conveyor.v1.ResizeStage/Resize` | an image | "
                                      "an image | 50062 | `--resize-target` | `conveyor-resize` |"),
            std::string::npos)
      << StageTableMarkdown();
}

TEST(StageRegistryTest, StageTableNeedsItsMarkers) {
  EXPECT_EQ(WithStageTable("no table here").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string doc = absl::StrCat("a\n", kStageTableBegin, "\nold\n", kStageTableEnd, "\nz\n");
  absl::StatusOr<std::string> updated = WithStageTable(doc);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(*updated, absl::StrCat("a\n", kStageTableBegin, "\n", StageTableMarkdown(),
                                   kStageTableEnd, "\nz\n"));
}

}  // namespace
}  // namespace conveyor
