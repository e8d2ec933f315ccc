// RetryChain's plan: Scheduler::Retry, resumed earlier where an input image
// it needs was freed (--failed-blob-retention).
#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/stage_registry.h"
#include "common/status_details.h"
#include "orchestrator/chain_api.h"
#include "orchestrator/store_errors.h"

namespace conveyor::orchestrator {

using conveyor::v1::Chain;

namespace {

// Steps whose worker call carries an input image.
bool NeedsImage(const conveyor::v1::Step& step) {
  return step.has_resize() || step.has_filter() || step.has_upload();
}

std::string StepName(const conveyor::v1::ChainSpec& spec, int step) {
  return absl::StrCat("step ", step, " (", StageName(StepKind(spec.steps(step))), ")");
}

// Turns Scheduler::Retry's resume at its first unfinished step into a resume
// at `from` (< that step): steps from..first-1 had succeeded but one of their
// outputs that a later step needs was freed, so they run again.
void ResumeEarlier(Transition& t, int from, const std::string& note) {
  Chain& c = t.chain;
  const int first = t.effects.enqueue_step;
  for (int i = from; i < first; ++i) {
    conveyor::v1::StepStatus* s = c.mutable_steps(i);
    s->set_state(conveyor::v1::PENDING);
    s->set_attempts(0);
    s->set_deferrals(0);
    s->clear_error();
    s->clear_end_time();
    s->clear_start_time();
    s->clear_next_attempt_time();
    s->clear_worker();
    s->clear_output();
    s->clear_duration();
  }
  // Results are the stored objects of succeeded uploads, in step order.
  c.clear_results();
  int done = 0;
  for (const conveyor::v1::StepStatus& s : c.steps()) {
    if (s.state() != conveyor::v1::SUCCEEDED) continue;
    ++done;
    if (s.output().has_stored_object()) *c.add_results() = s.output().stored_object();
  }
  c.set_progress_percent(c.steps_size() == 0 ? 0 : done * 100 / c.steps_size());
  c.set_resume_note(note);
  t.effects.enqueue_step = from;
  t.effects.counters = {{absl::StrCat(StageName(c.steps(from).kind()), ".queued"), 1}};
  for (conveyor::v1::ChainEvent& e : t.effects.events) {
    if (e.type() != conveyor::v1::ChainEvent::CHAIN_RESUMED) continue;
    e.set_step_index(from);
    e.set_progress_percent(c.progress_percent());
  }
}


}  // namespace

absl::StatusOr<ChainApi::PlannedAction> ChainApi::PlanRetry(const Chain& chain) const {
  absl::StatusOr<Transition> t = scheduler_.Retry(chain);
  if (!t.ok()) return t.status();
  t->chain.clear_resume_note();
  const std::string id = ChainIdFromName(chain.name());
  // The images this resume needs may have been freed (FAILED/CANCELLED
  // chains keep them for --failed-blob-retention only). Resume from the
  // earliest step whose input is still there; the required blobs are
  // re-checked atomically with the resume (ApplyExtras::required_blobs).
  absl::StatusOr<std::vector<int>> missing_list = store_.MissingBlobs(id, BlobIndexes(chain));
  if (!missing_list.ok()) return PublicStoreError(missing_list.status());
  const std::set<int> missing(missing_list->begin(), missing_list->end());
  const conveyor::v1::ChainSpec& spec = chain.spec();
  const int first = t->effects.enqueue_step;
  int from = first;
  std::string gone_text;
  for (bool moved = true; moved;) {
    moved = false;
    for (int s = from; s < spec.steps_size() && !moved; ++s) {
      if (!NeedsImage(spec.steps(s))) continue;
      // Blob b = output of step b-1, re-made if that step runs again.
      const int b = InputBlobIndex(spec, s);
      if (b > from || missing.count(b) == 0) continue;
      if (b == 0) {
        return WithErrorReason(
            absl::FailedPreconditionError(absl::StrCat(
                chain.name(), " cannot be retried: its inline source image, the input of ",
                StepName(spec, s), ", was freed ",
                absl::FormatDuration(options_.failed_blob_retention),
                " after the chain ended (--failed-blob-retention) and nothing can recreate "
                "it; submit the chain again with the source")),
            "SOURCE_FREED", {{"step", std::to_string(s)}});
      }
      if (gone_text.empty()) {
        gone_text = absl::StrCat("the output of ", StepName(spec, b - 1), ", input of ",
                                 StepName(spec, s),
                                 ", was freed after the chain ended "
                                 "(--failed-blob-retention)");
      }
      from = b - 1;
      moved = true;
    }
  }
  PlannedAction plan{*std::move(t), {}};
  ApplyExtras& extras = plan.extras;
  for (int s = from; s < spec.steps_size(); ++s) {
    const int b = InputBlobIndex(spec, s);
    if (NeedsImage(spec.steps(s)) && b <= from) extras.required_blobs.push_back(b);
  }
  std::sort(extras.required_blobs.begin(), extras.required_blobs.end());
  extras.required_blobs.erase(
      std::unique(extras.required_blobs.begin(), extras.required_blobs.end()),
      extras.required_blobs.end());
  if (from < first) {
    ResumeEarlier(plan.transition, from,
                  absl::StrCat("resumed from ", StepName(spec, from), ", not ",
                               StepName(spec, first), ": ", gone_text));
    LogLine(LogLevel::kInfo)
        .Add("msg", "retry resumes earlier")
        .Add("chain", chain.name())
        .Add("from_step", from)
        .Add("first_unfinished", first);
  }
  return plan;
}

}  // namespace conveyor::orchestrator
