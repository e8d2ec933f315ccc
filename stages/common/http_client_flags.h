// Command-line flags of the guarded HTTP client, shared by conveyor-download
// and conveyor-webhook. Included only by main.cc files (CLI11 is heavy).
#ifndef CONVEYOR_STAGES_COMMON_HTTP_CLIENT_FLAGS_H_
#define CONVEYOR_STAGES_COMMON_HTTP_CLIENT_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "common/server_flags.h"
#include "stages/common/http_client.h"
#include "stages/common/ssrf_guard.h"

namespace conveyor {

// Adds --connect-timeout, --total-timeout, --allow-private-networks,
// --ca-file and --allow-cidr. `total_timeout_help` says what "whole" means for
// this stage. Networks given with --allow-cidr land in `options` when the
// callback of CLI11 runs; a malformed one is a validation error (exit 2).
inline void AddHttpClientFlags(CLI::App& app, HttpClientOptions& options,
                               const std::string& total_timeout_help) {
  AddDurationFlag(app, "--connect-timeout", options.connect_timeout,
                  "time to connect to a server, per redirect hop");
  AddDurationFlag(app, "--total-timeout", options.total_timeout,
                  total_timeout_help + " (the gRPC deadline applies too, whichever is sooner)");
  AddEnvFlag(app, "--allow-private-networks", options.ssrf_policy.allow_private_networks,
             "also connect to loopback, private, link-local, metadata and other special "
             "addresses (local use and tests only)");
  AddEnvOption(app, "--ca-file", options.ca_file,
               "PEM file of CA certificates trusted for https (default: the system store)")
      ->check(CLI::ExistingFile);
  app.add_option_function<std::vector<std::string>>(
         "--allow-cidr",
         [&options](const std::vector<std::string>& cidrs) {
           for (const std::string& text : cidrs) {
             auto network = ParseIpNetwork(text);
             if (!network.ok()) {
               throw CLI::ValidationError("--allow-cidr", std::string(network.status().message()));
             }
             options.ssrf_policy.allowed_networks.push_back(*network);
           }
         },
         "a network to allow whatever its class, e.g. 127.0.0.1/32; repeatable "
         "(comma-separated in the environment variable)")
      ->envname("CONVEYOR_ALLOW_CIDR")
      ->delimiter(',')
      ->type_name("CIDR");
}

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_HTTP_CLIENT_FLAGS_H_
