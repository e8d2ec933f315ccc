#include "stages/common/ssrf_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/rpc/error_details.pb.h"
#include "common/status_details.h"

namespace conveyor {
namespace {

IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress address;
  address.bytes[0] = a;
  address.bytes[1] = b;
  address.bytes[2] = c;
  address.bytes[3] = d;
  return address;
}

uint32_t V4Value(const IpAddress& address) {
  return (uint32_t{address.bytes[0]} << 24) | (uint32_t{address.bytes[1]} << 16) |
         (uint32_t{address.bytes[2]} << 8) | uint32_t{address.bytes[3]};
}

bool InV4(uint32_t value, uint32_t base, int prefix_length) {
  const uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
  return (value & mask) == base;
}

constexpr uint32_t Dotted(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// True if the first `prefix_length` bits of `bytes` equal those of `prefix`.
bool HasPrefix(const std::array<uint8_t, 16>& bytes, const std::array<uint8_t, 16>& prefix,
               int prefix_length) {
  int full = prefix_length / 8;
  if (std::memcmp(bytes.data(), prefix.data(), full) != 0) return false;
  int rest = prefix_length % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (prefix[full] & mask);
}

std::array<uint8_t, 16> V6(std::initializer_list<uint16_t> groups) {
  std::array<uint8_t, 16> bytes{};
  int i = 0;
  for (uint16_t group : groups) {
    bytes[i++] = static_cast<uint8_t>(group >> 8);
    bytes[i++] = static_cast<uint8_t>(group & 0xff);
  }
  return bytes;
}

IpAddress V4FromBytes(const std::array<uint8_t, 16>& bytes, int offset) {
  return V4(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]);
}

bool AllZero(const std::array<uint8_t, 16>& bytes, int from, int to) {
  for (int i = from; i < to; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

// ::ffff:a.b.c.d — what a dual-stack socket really connects to.
absl::optional<IpAddress> MappedV4(const IpAddress& address) {
  if (!address.is_v6) return absl::nullopt;
  const auto& b = address.bytes;
  if (AllZero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff) return V4FromBytes(b, 12);
  return absl::nullopt;
}

// Teredo 2001:0::/32 (RFC 4380): server IPv4 in bits 32..63, the client's
// public IPv4 inverted in the last 32 bits. The packet goes to the relay for
// the client's address, so that is the address that counts.
absl::optional<IpAddress> TeredoClientV4(const IpAddress& address) {
  const auto& b = address.bytes;
  if (!address.is_v6 || !HasPrefix(b, V6({0x2001, 0}), 32)) return absl::nullopt;
  return V4(static_cast<uint8_t>(~b[12]), static_cast<uint8_t>(~b[13]),
            static_cast<uint8_t>(~b[14]), static_cast<uint8_t>(~b[15]));
}

// Every IPv6 form that carries an IPv4 address the packet may end up at.
absl::optional<IpAddress> EmbeddedV4(const IpAddress& address) {
  if (auto mapped = MappedV4(address)) return mapped;
  const auto& b = address.bytes;
  // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
  if (AllZero(b, 0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
    return V4FromBytes(b, 12);
  }
  // IPv4-compatible ::a.b.c.d (deprecated), except :: and ::1 themselves.
  if (AllZero(b, 0, 12) && !(AllZero(b, 12, 15) && b[15] <= 1)) return V4FromBytes(b, 12);
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
  if (HasPrefix(b, V6({0x64, 0xff9b, 0, 0, 0, 0}), 96)) return V4FromBytes(b, 12);
  // 6to4 2002:AABB:CCDD::/48 (RFC 3056): the IPv4 address is bits 16..47.
  if (b[0] == 0x20 && b[1] == 0x02) return V4FromBytes(b, 2);
  return absl::nullopt;
}

struct V4Range {
  uint32_t base;
  int prefix_length;
  AddressClass address_class;
};

// The IANA IPv4 Special-Purpose Address Registry (plus multicast and the
// cloud metadata hosts), most specific first. Entries the registry marks
// globally reachable (AS112, AMT, PCP/TURN anycast) are refused too: an
// image or webhook URL has no business there.
constexpr V4Range kV4Ranges[] = {
    // Metadata first: they sit inside link-local and shared ranges.
    {Dotted(169, 254, 169, 254), 32, AddressClass::kCloudMetadata},
    {Dotted(169, 254, 170, 2), 32, AddressClass::kCloudMetadata},
    {Dotted(100, 100, 100, 200), 32, AddressClass::kCloudMetadata},
    {Dotted(0, 0, 0, 0), 32, AddressClass::kUnspecified},
    {Dotted(255, 255, 255, 255), 32, AddressClass::kBroadcast},
    {Dotted(0, 0, 0, 0), 8, AddressClass::kThisNetwork},          // RFC 791
    {Dotted(10, 0, 0, 0), 8, AddressClass::kPrivate},             // RFC 1918
    {Dotted(100, 64, 0, 0), 10, AddressClass::kSharedCgnat},      // RFC 6598
    {Dotted(127, 0, 0, 0), 8, AddressClass::kLoopback},           // RFC 1122
    {Dotted(169, 254, 0, 0), 16, AddressClass::kLinkLocal},       // RFC 3927
    {Dotted(172, 16, 0, 0), 12, AddressClass::kPrivate},          // RFC 1918
    {Dotted(192, 0, 0, 0), 24, AddressClass::kReserved},          // IETF protocol assignments
    {Dotted(192, 0, 2, 0), 24, AddressClass::kDocumentation},     // TEST-NET-1
    {Dotted(192, 31, 196, 0), 24, AddressClass::kReserved},       // AS112-v4
    {Dotted(192, 52, 193, 0), 24, AddressClass::kReserved},       // AMT
    {Dotted(192, 88, 99, 0), 24, AddressClass::kReserved},        // 6to4 relay anycast
    {Dotted(192, 168, 0, 0), 16, AddressClass::kPrivate},         // RFC 1918
    {Dotted(192, 175, 48, 0), 24, AddressClass::kReserved},       // AS112 direct delegation
    {Dotted(198, 18, 0, 0), 15, AddressClass::kReserved},         // benchmarking
    {Dotted(198, 51, 100, 0), 24, AddressClass::kDocumentation},  // TEST-NET-2
    {Dotted(203, 0, 113, 0), 24, AddressClass::kDocumentation},   // TEST-NET-3
    {Dotted(224, 0, 0, 0), 4, AddressClass::kMulticast},
    {Dotted(240, 0, 0, 0), 4, AddressClass::kReserved},           // future use
};

AddressClass ClassifyV4(const IpAddress& address) {
  const uint32_t v = V4Value(address);
  for (const V4Range& range : kV4Ranges) {
    if (InV4(v, range.base, range.prefix_length)) return range.address_class;
  }
  return AddressClass::kPublic;
}

struct V6Range {
  std::array<uint8_t, 16> prefix;
  int prefix_length;
  AddressClass address_class;
};

// The IANA IPv6 Special-Purpose Address Registry (plus multicast, site-local
// and cloud metadata), checked after the forms that embed IPv4 addresses.
const std::vector<V6Range>& V6Ranges() {
  static const std::vector<V6Range>* ranges = new std::vector<V6Range>{
      {V6({0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254}), 128, AddressClass::kCloudMetadata},
      {V6({0x64, 0xff9b, 1}), 48, AddressClass::kPrivate},   // local-use translation, RFC 8215
      {V6({0x100, 0, 0, 0}), 64, AddressClass::kReserved},   // discard-only, RFC 6666
      {V6({0x100, 0, 0, 1}), 64, AddressClass::kReserved},   // dummy prefix, RFC 9780
      {V6({0x2001, 0xdb8}), 32, AddressClass::kDocumentation},  // RFC 3849
      {V6({0x2001}), 23, AddressClass::kReserved},  // IETF protocol assignments (ORCHID, AMT...)
      {V6({0x2620, 0x4f, 0x8000}), 48, AddressClass::kReserved},  // AS112 direct delegation
      {V6({0x3fff}), 20, AddressClass::kDocumentation},           // RFC 9637
      {V6({0x5f00}), 16, AddressClass::kReserved},                // SRv6 SIDs, RFC 9602
      {V6({0xfc00}), 7, AddressClass::kPrivate},                  // unique local
      {V6({0xfe80}), 10, AddressClass::kLinkLocal},
      {V6({0xfec0}), 10, AddressClass::kPrivate},                 // site-local (deprecated)
      {V6({0xff00}), 8, AddressClass::kMulticast},
  };
  return *ranges;
}

AddressClass ClassifyV6(const IpAddress& address) {
  const auto& b = address.bytes;
  if (AllZero(b, 0, 16)) return AddressClass::kUnspecified;
  if (AllZero(b, 0, 15) && b[15] == 1) return AddressClass::kLoopback;
  if (auto v4 = EmbeddedV4(address)) return ClassifyV4(*v4);
  // The rest of ::/96 (IPv4-compatible) and ::ffff:0:0/96 are caught above.
  if (auto client = TeredoClientV4(address)) {
    // A special client address says most about what was meant; a public one
    // is still refused: 2001::/32 lies in 2001::/23, not globally routed.
    const AddressClass embedded = ClassifyV4(*client);
    return embedded == AddressClass::kPublic ? AddressClass::kReserved : embedded;
  }
  for (const V6Range& range : V6Ranges()) {
    if (HasPrefix(b, range.prefix, range.prefix_length)) return range.address_class;
  }
  return AddressClass::kPublic;
}

}  // namespace

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (is_v6) {
    inet_ntop(AF_INET6, bytes.data(), text, sizeof(text));
  } else {
    inet_ntop(AF_INET, bytes.data(), text, sizeof(text));
  }
  return text;
}

absl::optional<IpAddress> ParseIpAddress(absl::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  const std::string copy(text);
  IpAddress address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  address.is_v6 = true;
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) return address;
  return absl::nullopt;
}

absl::optional<IpAddress> IpAddressFromSockaddr(const sockaddr* address, socklen_t length) {
  if (address == nullptr) return absl::nullopt;
  IpAddress result;
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(result.bytes.data(), &in->sin_addr, 4);
    return result;
  }
  if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    result.is_v6 = true;
    std::memcpy(result.bytes.data(), &in6->sin6_addr, 16);
    return result;
  }
  return absl::nullopt;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.is_v6 != base.is_v6) {
    // A v4 allow-list entry also covers its ::ffff: form.
    auto mapped = MappedV4(address);
    return mapped.has_value() && !base.is_v6 && Contains(*mapped);
  }
  return HasPrefix(address.bytes, base.bytes, prefix_length);
}

std::string IpNetwork::ToString() const {
  return absl::StrCat(base.ToString(), "/", prefix_length);
}

absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  auto base = ParseIpAddress(parts[0]);
  if (!base.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("want a network such as 127.0.0.1/32 or fd00::/8, got \"", text, "\""));
  }
  const int max_length = base->is_v6 ? 128 : 32;
  int prefix_length = max_length;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &prefix_length) || prefix_length < 0 ||
                            prefix_length > max_length)) {
    return absl::InvalidArgumentError(absl::StrCat("prefix length of \"", text, "\": want 0..",
                                                   max_length, ", got \"", parts[1], "\""));
  }
  IpNetwork network{*base, prefix_length};
  IpAddress masked{base->is_v6, {}};
  std::memcpy(masked.bytes.data(), base->bytes.data(), prefix_length / 8);
  if (prefix_length % 8 != 0) {
    masked.bytes[prefix_length / 8] =
        base->bytes[prefix_length / 8] & static_cast<uint8_t>(0xff << (8 - prefix_length % 8));
  }
  if (!(masked == *base)) {
    return absl::InvalidArgumentError(
        absl::StrCat("network \"", text, "\" has host bits set; did you mean ",
                     IpNetwork{masked, prefix_length}.ToString(), "?"));
  }
  return network;
}

absl::string_view AddressClassName(AddressClass address_class) {
  switch (address_class) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kThisNetwork:
      return "this-network";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kSharedCgnat:
      return "shared-cgnat";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kBroadcast:
      return "broadcast";
    case AddressClass::kReserved:
      return "reserved";
    case AddressClass::kCloudMetadata:
      return "cloud-metadata";
    case AddressClass::kDocumentation:
      return "documentation";
  }
  return "unknown";
}

AddressClass ClassifyAddress(const IpAddress& address) {
  return address.is_v6 ? ClassifyV6(address) : ClassifyV4(address);
}

bool SsrfGuard::IsAllowed(const IpAddress& address) const {
  if (policy_.allow_private_networks) return true;
  for (const IpNetwork& network : policy_.allowed_networks) {
    if (network.Contains(address)) return true;
  }
  return ClassifyAddress(address) == AddressClass::kPublic;
}

absl::Status SsrfGuard::Check(absl::string_view host, const IpAddress& address) const {
  if (IsAllowed(address)) return absl::OkStatus();
  // The message names the host and the class, never the address: echoing it
  // would tell a caller what internal names resolve to.
  const absl::string_view class_name = AddressClassName(ClassifyAddress(address));
  return WithErrorReason(
      absl::PermissionDeniedError(
          absl::StrCat("destination ", host, " resolves to a ", class_name,
                       " address, which this worker does not connect to; start it with "
                       "--allow-cidr or --allow-private-networks to allow it")),
      kDestinationBlocked, {{"host", std::string(host)}, {"address_class", std::string(class_name)}});
}

}  // namespace conveyor
