// The URL parser and the SSRF classifier (stages/common/ssrf_guard.h,
// ValidateHttpUrl in http_client.h) on arbitrary strings and addresses.
// Pure functions only: nothing here resolves a name or opens a socket
// (ValidateHttpUrl is libcurl's URL parser, curl_url_set; Fetch is never
// called), so the fuzzer cannot send a packet anywhere.
//
// Invariants, each an abort when broken:
//  - parse -> ToString -> parse round-trips, for addresses and networks;
//    a network contains its own base address;
//  - 127/8, 10/8 and ::1 are never public;
//  - an IPv6 form embedding a non-public IPv4 address (IPv4-mapped,
//    IPv4-compatible, IPv4-translated, NAT64 64:ff9b::/96, 6to4 2002::/16,
//    Teredo 2001::/32 with its obfuscated client address) is never public;
//  - with the default policy the guard allows exactly the public class, and
//    Check refuses with PERMISSION_DENIED whatever IsAllowed refuses;
//  - an allowed network allows every address it contains.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "stages/common/http_client.h"
#include "stages/common/ssrf_guard.h"

namespace {

using conveyor::AddressClass;
using conveyor::IpAddress;

[[noreturn]] void Finding(const char* what, const IpAddress& address) {
  std::fprintf(stderr, "url_ssrf_fuzz: %s: %s (%s)\n", what, address.ToString().c_str(),
               conveyor::AddressClassName(conveyor::ClassifyAddress(address)).data());
  std::abort();
}

bool IsPublic(const IpAddress& address) {
  return conveyor::ClassifyAddress(address) == AddressClass::kPublic;
}

IpAddress V4(const uint8_t* b) {
  IpAddress a;
  std::memcpy(a.bytes.data(), b, 4);
  return a;
}

// `prefix` (up to 12 bytes) then the IPv4 address in bytes 12..15.
IpAddress Embed(std::initializer_list<uint8_t> prefix, const IpAddress& v4) {
  IpAddress a;
  a.is_v6 = true;
  std::copy(prefix.begin(), prefix.end(), a.bytes.begin());
  std::memcpy(a.bytes.data() + 12, v4.bytes.data(), 4);
  return a;
}

void CheckV4(const IpAddress& v4, const uint8_t* noise) {
  if ((v4.bytes[0] == 127 || v4.bytes[0] == 10) && IsPublic(v4)) {
    Finding("loopback/private IPv4 classified public", v4);
  }
  if (IsPublic(v4)) return;
  // Every IPv6 wrapping of a refused IPv4 address must be refused too.
  const IpAddress forms[] = {
      Embed({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, v4),              // ::ffff:a.b.c.d
      Embed({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, v4),                    // ::a.b.c.d
      Embed({0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, v4),              // ::ffff:0:a.b.c.d
      Embed({0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, v4),           // 64:ff9b::a.b.c.d
  };
  for (const IpAddress& form : forms) {
    if (IsPublic(form)) Finding("IPv6 form of a non-public IPv4 address classified public", form);
  }
  // 6to4: 2002:AABB:CCDD:<any subnet and interface id>.
  IpAddress six_to_four;
  six_to_four.is_v6 = true;
  std::memcpy(six_to_four.bytes.data(), noise, 16);
  six_to_four.bytes[0] = 0x20;
  six_to_four.bytes[1] = 0x02;
  std::memcpy(six_to_four.bytes.data() + 2, v4.bytes.data(), 4);
  if (IsPublic(six_to_four)) Finding("6to4 address of a non-public IPv4 classified public",
                                     six_to_four);
  // Teredo: 2001:0000:<server v4>:<flags>:<port>:<client v4 with every bit
  // inverted>; the client address is where the packets go.
  IpAddress teredo;
  teredo.is_v6 = true;
  std::memcpy(teredo.bytes.data(), noise, 16);
  teredo.bytes[0] = 0x20;
  teredo.bytes[1] = 0x01;
  teredo.bytes[2] = 0;
  teredo.bytes[3] = 0;
  for (int i = 0; i < 4; ++i) teredo.bytes[12 + i] = static_cast<uint8_t>(~v4.bytes[i]);
  if (IsPublic(teredo)) Finding("Teredo address of a non-public IPv4 classified public", teredo);
}

void CheckGuard(const IpAddress& address) {
  const conveyor::SsrfGuard guard;
  const bool allowed = guard.IsAllowed(address);
  if (allowed != IsPublic(address)) Finding("default guard disagrees with the class", address);
  const absl::Status check = guard.Check("fuzz.invalid", address);
  if (check.ok() != allowed) Finding("Check disagrees with IsAllowed", address);
  if (!check.ok() && check.code() != absl::StatusCode::kPermissionDenied) {
    Finding("refusal is not PERMISSION_DENIED", address);
  }
}

// Structurally valid UTF-8 (no overlong forms or surrogates are checked:
// this only mirrors what a proto3 string field lets through).
bool IsUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

void CheckText(const std::string& text) {
  // ValidateHttpUrl is libcurl's parser; any verdict is fine, a crash is not.
  // Its URLs come from proto3 string fields, which are UTF-8 by the time
  // they arrive (and its error quotes the URL into one).
  if (IsUtf8(text)) {
    const absl::Status url = conveyor::ValidateHttpUrl("url", text);
    if (!url.ok() && url.code() != absl::StatusCode::kInvalidArgument &&
        url.code() != absl::StatusCode::kResourceExhausted) {
      std::fprintf(stderr, "url_ssrf_fuzz: ValidateHttpUrl returned %s\n",
                   url.ToString().c_str());
      std::abort();
    }
  }

  if (absl::optional<IpAddress> address = conveyor::ParseIpAddress(text)) {
    absl::optional<IpAddress> again = conveyor::ParseIpAddress(address->ToString());
    if (!again || !(*again == *address)) Finding("address does not round-trip", *address);
    CheckGuard(*address);
  }

  absl::StatusOr<conveyor::IpNetwork> network = conveyor::ParseIpNetwork(text);
  if (network.ok()) {
    const int max_prefix = network->base.is_v6 ? 128 : 32;
    if (network->prefix_length < 0 || network->prefix_length > max_prefix) {
      Finding("network prefix out of range", network->base);
    }
    if (!network->Contains(network->base)) Finding("network misses its base", network->base);
    absl::StatusOr<conveyor::IpNetwork> again = conveyor::ParseIpNetwork(network->ToString());
    if (!again.ok() || !(again->base == network->base) ||
        again->prefix_length != network->prefix_length) {
      Finding("network does not round-trip", network->base);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckText(std::string(reinterpret_cast<const char*>(data), size));

  // The same bytes as raw addresses and a socket address.
  FuzzedDataProvider provider(data, size);
  std::vector<uint8_t> raw = provider.ConsumeBytes<uint8_t>(36);
  raw.resize(36, 0);
  IpAddress v6;
  v6.is_v6 = true;
  std::memcpy(v6.bytes.data(), raw.data(), 16);
  const IpAddress v4 = V4(raw.data() + 16);
  IpAddress loopback6;
  loopback6.is_v6 = true;
  loopback6.bytes[15] = 1;
  if (IsPublic(loopback6)) Finding("::1 classified public", loopback6);
  CheckV4(v4, raw.data() + 20);
  CheckGuard(v4);
  CheckGuard(v6);
  // A network built from the same bytes (host bits cleared) must print in a
  // form its parser takes back, and allow what it contains.
  conveyor::IpNetwork network{v6, raw[16] % 129};
  for (int bit = network.prefix_length; bit < 128; ++bit) {
    network.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  absl::StatusOr<conveyor::IpNetwork> parsed = conveyor::ParseIpNetwork(network.ToString());
  if (!parsed.ok()) Finding("a valid network does not parse back", network.base);
  conveyor::SsrfPolicy policy;
  policy.allowed_networks.push_back(*parsed);
  const conveyor::SsrfGuard guard(policy);
  if (parsed->Contains(v6) != network.Contains(v6)) Finding("parsed network differs", v6);
  if (network.Contains(v6) && !guard.IsAllowed(v6)) Finding("allowed network refused", v6);

  // Socket addresses of any length and family: exactly `length` bytes on the
  // heap, so reading past them is an ASan report.
  // (At least the family: libcurl's callback always has one.)
  std::vector<uint8_t> sockaddr_bytes = provider.ConsumeRemainingBytes<uint8_t>();
  if (sockaddr_bytes.size() >= sizeof(sa_family_t)) {
    auto* address = reinterpret_cast<const sockaddr*>(sockaddr_bytes.data());
    conveyor::IpAddressFromSockaddr(address, static_cast<socklen_t>(sockaddr_bytes.size()));
  }
  return 0;
}
