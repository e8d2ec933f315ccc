// How every binary (servers, the CLI, the benchmark) declares and parses its
// flags: each flag has a CONVEYOR_* environment variable as fallback (a flag
// given on the command line wins), durations read like "30s", and a bad flag
// is one line on stderr and exit 2. Included only by main.cc files and the
// *_flags.h headers they include: CLI11 is a heavy header.
#ifndef CONVEYOR_COMMON_CLI_FLAGS_H_
#define CONVEYOR_COMMON_CLI_FLAGS_H_

#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>
#include <string>

#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace conveyor {

// The environment variable of a flag: "--tls-cert" is CONVEYOR_TLS_CERT.
// Every flag of every binary has one (docs/deploy.md), so it is derived here
// instead of spelled next to each flag.
inline std::string EnvNameOf(const std::string& flag) {
  std::string env = "CONVEYOR_";
  for (char c : flag.substr(flag.find_first_not_of('-'))) {
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

// A flag with its CONVEYOR_* environment variable (a flag given on the
// command line wins).
template <typename T>
CLI::Option* AddEnvOption(CLI::App& app, const std::string& flag, T& value,
                          const std::string& help) {
  return app.add_option(flag, value, help)->envname(EnvNameOf(flag));
}

inline CLI::Option* AddEnvFlag(CLI::App& app, const std::string& flag, bool& value,
                               const std::string& help) {
  return app.add_flag(flag, value, help)->envname(EnvNameOf(flag));
}

// A duration flag written like "30s", "250ms" or "1h"; `env` "" = EnvNameOf(name).
inline CLI::Option* AddDurationFlag(CLI::App& app, const std::string& name, absl::Duration& target,
                                    const std::string& help, const std::string& env = "") {
  return app
      .add_option_function<std::string>(
          name,
          [&target, name](const std::string& text) {
            absl::Duration parsed;
            if (!absl::ParseDuration(text, &parsed) || parsed < absl::ZeroDuration()) {
              throw CLI::ValidationError(
                  name, "want a duration such as 250ms, 30s or 5m, got \"" + text + "\"");
            }
            target = parsed;
          },
          help + " (default " + absl::FormatDuration(target) + ")")
      ->envname(env.empty() ? EnvNameOf(name) : env)
      ->type_name("DURATION");
}

// Parses the command line. Returns the exit code when main() should stop at
// once: 0 after --help, 2 after a bad flag (one clear line on stderr);
// nullopt to go on.
inline absl::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::string name = app.get_name();
    name = name.substr(name.rfind('/') + 1);
    std::cerr << name << ": " << error.what() << " (see --help)\n";
    return 2;
  }
  return absl::nullopt;
}

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_CLI_FLAGS_H_
