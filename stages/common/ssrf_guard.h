// The address guard of the download and webhook stages (server-side request
// forgery): a URL from a chain must not make a worker talk to itself, to the
// cluster's private network or to a cloud metadata service.
//
// The guard judges ADDRESSES, not host names: the HTTP client asks it about
// the address it is about to connect to, after DNS, on every redirect hop
// (see http_client.h). So "127.1", "2130706433", "0x7f000001", "localhost",
// a DNS name pointing at 10.0.0.1 and a redirect to [::ffff:169.254.169.254]
// are all refused the same way.
//
// Refused by default: every range of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries, plus multicast and the cloud metadata hosts:
//   IPv4: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
//         192.0.2/24, 192.31.196/24, 192.52.193/24, 192.88.99/24, 192.168/16,
//         192.175.48/24, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4,
//         255.255.255.255; metadata 169.254.169.254, 169.254.170.2,
//         100.100.100.200;
//   IPv6: ::, ::1, 64:ff9b:1::/48, 100::/64, 100:0:0:1::/64, 2001::/23 (Teredo
//         2001::/32, ORCHID, AMT, benchmarking...), 2001:db8::/32,
//         2620:4f:8000::/48, 3fff::/20, 5f00::/16, fc00::/7, fe80::/10,
//         fec0::/10, ff00::/8; metadata fd00:ec2::254.
// IPv6 forms embedding an IPv4 address are judged by that address: IPv4-
// mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, IPv4-translated
// ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16 (bits 16..47); Teredo
// by its client address (the inverted last 32 bits) when that is special,
// and as reserved otherwise.
//
// Thread-safe after construction (all methods are const).
#ifndef CONVEYOR_STAGES_COMMON_SSRF_GUARD_H_
#define CONVEYOR_STAGES_COMMON_SSRF_GUARD_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace conveyor {

// An IPv4 or IPv6 address. IPv4 keeps its 4 bytes in bytes[0..3].
struct IpAddress {
  bool is_v6 = false;
  std::array<uint8_t, 16> bytes{};

  // Canonical text: "127.0.0.1", "::ffff:127.0.0.1", "fe80::1".
  std::string ToString() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Strict numeric parse (inet_pton): "10.0.0.1", "::1", "[::1]" (brackets
// allowed). Returns nullopt for names and for inet_aton shorthands such as
// "127.1" — the guard sees those only after resolution, as 127.0.0.1.
absl::optional<IpAddress> ParseIpAddress(absl::string_view text);

// From a socket address (AF_INET or AF_INET6); nullopt for other families.
absl::optional<IpAddress> IpAddressFromSockaddr(const sockaddr* address, socklen_t length);

// A network such as 127.0.0.1/32 or fd00::/8.
struct IpNetwork {
  IpAddress base;
  int prefix_length = 0;

  bool Contains(const IpAddress& address) const;
  std::string ToString() const;
};

// INVALID_ARGUMENT unless `text` is "<address>/<prefix>" with a prefix that
// fits the family; a bare address means a single host (/32 or /128). Host
// bits beyond the prefix must be zero (so typos like 10.0.0.1/8 are caught).
absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text);

// Why an address is (or is not) special.
enum class AddressClass {
  kPublic,  // globally routable: allowed
  kUnspecified,
  kThisNetwork,
  kLoopback,
  kPrivate,
  kLinkLocal,
  kSharedCgnat,
  kMulticast,
  kBroadcast,
  kReserved,
  kCloudMetadata,
  kDocumentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
};

// "public", "loopback", "private", "link-local", "cloud-metadata", ...
absl::string_view AddressClassName(AddressClass address_class);

// Classifies `address`. IPv6 forms that embed an IPv4 address are judged by
// the embedded IPv4 address (::ffff:127.0.0.1 is loopback).
AddressClass ClassifyAddress(const IpAddress& address);

struct SsrfPolicy {
  // Allow every class (for local use and tests).
  bool allow_private_networks = false;
  // Networks allowed whatever their class (e.g. 127.0.0.1/32 in tests).
  std::vector<IpNetwork> allowed_networks;
};

class SsrfGuard {
 public:
  explicit SsrfGuard(SsrfPolicy policy = {}) : policy_(std::move(policy)) {}

  // OK if a connection to `address` is allowed; otherwise PERMISSION_DENIED
  // "destination <host> resolves to a <class> address, which this worker does
  // not connect to", with ErrorInfo reason DESTINATION_BLOCKED and metadata
  // {host, address_class}. Neither names the address itself: that would tell
  // a caller what internal names resolve to.
  absl::Status Check(absl::string_view host, const IpAddress& address) const;

  bool IsAllowed(const IpAddress& address) const;
  const SsrfPolicy& policy() const { return policy_; }

 private:
  SsrfPolicy policy_;
};

// The ErrorInfo reason of a refused destination.
inline constexpr absl::string_view kDestinationBlocked = "DESTINATION_BLOCKED";

}  // namespace conveyor

#endif  // CONVEYOR_STAGES_COMMON_SSRF_GUARD_H_
