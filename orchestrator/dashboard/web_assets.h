// The dashboard's pages, embedded in the binary at build time: the files of
// orchestrator/dashboard/web/ become string constants in a generated source
// (CMake file(READ) + configure_file, web_assets.cc.in; no toolchain, no
// download). Plain HTML, CSS and JavaScript with no external resources, so
// the Content-Security-Policy can allow only 'self'.
#ifndef CONVEYOR_ORCHESTRATOR_DASHBOARD_WEB_ASSETS_H_
#define CONVEYOR_ORCHESTRATOR_DASHBOARD_WEB_ASSETS_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace conveyor::orchestrator::dashboard {

struct WebAsset {
  absl::string_view path;          // "/", "/app.js", "/app.css"
  absl::string_view content_type;  // with charset
  absl::string_view body;
};

// Every embedded file.
absl::Span<const WebAsset> WebAssets();

}  // namespace conveyor::orchestrator::dashboard

#endif  // CONVEYOR_ORCHESTRATOR_DASHBOARD_WEB_ASSETS_H_
