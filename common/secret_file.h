// Secrets read from files, never from argv: a command line is visible to
// every local user (ps, /proc/<pid>/cmdline) and lands in shell history.
//
// The one check every binary runs on a secret it is given (the webhook
// worker's --secrets-file, the orchestrator's --redis-password-file): not
// empty, and not one of the placeholder values this repository has ever
// shipped in deploy/ or the docs (kPlaceholderSecrets in secret_file.cc is
// the one list). A deployment that forgot to replace a placeholder fails at
// start instead of running with a secret anyone can read on GitHub.
//
// No message ever contains the secret, only the file's path. Pure functions
// apart from the file read and the warning below; thread-safe.
#ifndef CONVEYOR_COMMON_SECRET_FILE_H_
#define CONVEYOR_COMMON_SECRET_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace conveyor {

// True if `secret` is a known placeholder: one of kPlaceholderSecrets
// (case-insensitive), or a value containing "change-me", "changeme" or
// "replace-me" (also after base64-decoding a "whsec_" value, which is how
// the shipped webhook placeholders hide theirs).
bool IsPlaceholderSecret(absl::string_view secret);

// Every exact placeholder value of kPlaceholderSecrets, for checks that only
// see digests (the orchestrator's tokens file holds SHA-256 digests of
// tokens, never tokens, so IsPlaceholderSecret cannot see the value).
absl::Span<const absl::string_view> PlaceholderSecrets();

// OK, or FAILED_PRECONDITION "<what> is empty" / "<what> is a placeholder
// ...; generate a real one" without the value.
absl::Status CheckSecretValue(absl::string_view secret, absl::string_view what);

// The whole text of the secret file at `path`. NOT_FOUND / PERMISSION_DENIED
// / FAILED_PRECONDITION (not a regular file, over 1 MiB) naming the path.
// Logs one warning line when other users may read the file (mode o+r): the
// secret is then only as private as the host.
absl::StatusOr<std::string> ReadSecretFileText(const std::string& path);

// A file holding one secret (e.g. a Redis password): its text with one
// trailing "\n" or "\r\n" removed (what `echo pw > file` and Kubernetes
// Secret volumes write), checked by CheckSecretValue. Refuses a secret that
// spans lines (FAILED_PRECONDITION): that is a wrong file, not a password.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_SECRET_FILE_H_
