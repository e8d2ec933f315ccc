// Classification of parsed addresses only: nothing here opens a socket.
#include "stages/common/ssrf_guard.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <ostream>
#include <string>

#include "common/status_details.h"

namespace conveyor {
namespace {

IpAddress Parse(const std::string& text) {
  auto address = ParseIpAddress(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(IpAddress{});
}

AddressClass Classify(const std::string& text) { return ClassifyAddress(Parse(text)); }

struct Case {
  const char* address;
  AddressClass expected;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.address; }

class ClassifyTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClassifyTest, ClassifiesAddress) {
  EXPECT_EQ(AddressClassName(Classify(GetParam().address)), AddressClassName(GetParam().expected))
      << GetParam().address;
}

INSTANTIATE_TEST_SUITE_P(
    Ipv4, ClassifyTest,
    ::testing::Values(
        Case{"0.0.0.0", AddressClass::kUnspecified}, Case{"0.1.2.3", AddressClass::kThisNetwork},
        Case{"0.255.255.255", AddressClass::kThisNetwork},
        Case{"127.0.0.1", AddressClass::kLoopback}, Case{"127.0.0.2", AddressClass::kLoopback},
        Case{"127.255.255.254", AddressClass::kLoopback}, Case{"10.0.0.1", AddressClass::kPrivate},
        Case{"10.255.255.255", AddressClass::kPrivate}, Case{"172.16.0.1", AddressClass::kPrivate},
        Case{"172.31.255.255", AddressClass::kPrivate},
        Case{"172.15.255.255", AddressClass::kPublic}, Case{"172.32.0.0", AddressClass::kPublic},
        Case{"192.168.0.1", AddressClass::kPrivate},
        Case{"192.168.255.255", AddressClass::kPrivate}, Case{"192.169.0.1", AddressClass::kPublic},
        Case{"169.254.0.1", AddressClass::kLinkLocal},
        Case{"169.254.255.255", AddressClass::kLinkLocal},
        Case{"169.254.169.254", AddressClass::kCloudMetadata},
        Case{"169.254.170.2", AddressClass::kCloudMetadata},
        Case{"100.100.100.200", AddressClass::kCloudMetadata},
        Case{"100.64.0.1", AddressClass::kSharedCgnat},
        Case{"100.127.255.255", AddressClass::kSharedCgnat},
        Case{"100.63.255.255", AddressClass::kPublic}, Case{"100.128.0.0", AddressClass::kPublic},
        Case{"224.0.0.1", AddressClass::kMulticast},
        Case{"239.255.255.250", AddressClass::kMulticast},
        Case{"255.255.255.255", AddressClass::kBroadcast},
        Case{"240.0.0.1", AddressClass::kReserved}, Case{"192.0.0.8", AddressClass::kReserved},
        Case{"198.18.0.1", AddressClass::kReserved},
        Case{"203.0.113.7", AddressClass::kDocumentation},
        Case{"8.8.8.8", AddressClass::kPublic}, Case{"1.1.1.1", AddressClass::kPublic},
        Case{"93.184.216.34", AddressClass::kPublic},
        Case{"223.255.255.255", AddressClass::kPublic}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6, ClassifyTest,
    ::testing::Values(
        Case{"::", AddressClass::kUnspecified}, Case{"::1", AddressClass::kLoopback},
        Case{"[::1]", AddressClass::kLoopback}, Case{"fc00::1", AddressClass::kPrivate},
        Case{"fd12:3456::1", AddressClass::kPrivate}, Case{"fec0::1", AddressClass::kPrivate},
        Case{"fe80::1", AddressClass::kLinkLocal}, Case{"febf:ffff::1", AddressClass::kLinkLocal},
        Case{"fd00:ec2::254", AddressClass::kCloudMetadata},
        Case{"ff02::1", AddressClass::kMulticast}, Case{"ff05::1:3", AddressClass::kMulticast},
        Case{"2001:db8::1", AddressClass::kDocumentation}, Case{"100::1", AddressClass::kReserved},
        Case{"2001:4860:4860::8888", AddressClass::kPublic},
        Case{"2001:4860::8888", AddressClass::kPublic},
        Case{"2606:4700::1111", AddressClass::kPublic},
        Case{"fe7f:ffff::1", AddressClass::kPublic}));

// IPv6 spellings of IPv4 addresses are judged by the IPv4 address inside:
// mapped and compatible, NAT64 64:ff9b::/96, Teredo 2001::/32 (the client's
// IPv4 address is the last 32 bits inverted: a special client address gives
// its own class, a public one is still refused, as part of 2001::/23), and
// 6to4 2002::/16 (the IPv4 address in bits 16..47). One table, so that each
// spelling is listed once.
INSTANTIATE_TEST_SUITE_P(
    EmbeddedIpv4, ClassifyTest,
    ::testing::Values(
        Case{"::ffff:127.0.0.1", AddressClass::kLoopback},
        Case{"::ffff:7f00:1", AddressClass::kLoopback},
        Case{"::ffff:10.1.2.3", AddressClass::kPrivate},
        Case{"::ffff:169.254.169.254", AddressClass::kCloudMetadata},
        Case{"::ffff:0.0.0.0", AddressClass::kUnspecified},
        Case{"::ffff:8.8.8.8", AddressClass::kPublic},
        Case{"::127.0.0.1", AddressClass::kLoopback},
        Case{"::192.168.1.1", AddressClass::kPrivate},
        Case{"::ffff:0:127.0.0.1", AddressClass::kLoopback},
        // NAT64
        Case{"64:ff9b::a9fe:a9fe", AddressClass::kCloudMetadata},
        Case{"64:ff9b::7f00:1", AddressClass::kLoopback},
        Case{"64:ff9b::808:808", AddressClass::kPublic},
        Case{"64:ff9b:1::1", AddressClass::kPrivate},
        // Teredo: client 127.0.0.1 = ~0x7f000001 = 0x80fffffe
        Case{"2001:0:4136:e378:8000:63bf:80ff:fffe", AddressClass::kLoopback},
        // client 10.0.0.1 = ~0x0a000001 = 0xf5fffffe
        Case{"2001::f5ff:fffe", AddressClass::kPrivate},
        // client 169.254.169.254 = ~0xa9fea9fe = 0x56015601
        Case{"2001:0:1:2:3:4:5601:5601", AddressClass::kCloudMetadata},
        // client 8.8.8.8 = ~0x08080808 = 0xf7f7f7f7
        Case{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", AddressClass::kReserved},
        // 6to4
        Case{"2002:7f00:1::1", AddressClass::kLoopback},
        Case{"2002:c0a8:101::1", AddressClass::kPrivate},
        Case{"2002:808:808::1", AddressClass::kPublic},
        Case{"2002:a9fe:a9fe::1", AddressClass::kCloudMetadata},
        Case{"2002:a00:1::", AddressClass::kPrivate},
        Case{"2002:6440:1::1", AddressClass::kSharedCgnat},
        Case{"2002:c058:6301::1", AddressClass::kReserved},  // 192.88.99.1
        Case{"2002:c000:201::1", AddressClass::kDocumentation},
        Case{"2002:e000:1::1", AddressClass::kMulticast},
        Case{"2002:101:101::1", AddressClass::kPublic}));

// One case per entry of the IANA IPv4 Special-Purpose Address Registry (and
// multicast), at both ends of the range where it matters, plus the first
// public address past it: an off-by-one prefix shows up here.
INSTANTIATE_TEST_SUITE_P(
    Ipv4Registry, ClassifyTest,
    ::testing::Values(
        Case{"0.0.0.1", AddressClass::kThisNetwork},        // 0/8
        Case{"1.0.0.0", AddressClass::kPublic},
        Case{"10.0.0.0", AddressClass::kPrivate},           // 10/8
        Case{"11.0.0.0", AddressClass::kPublic},
        Case{"100.64.0.0", AddressClass::kSharedCgnat},     // 100.64/10
        Case{"127.0.0.0", AddressClass::kLoopback},         // 127/8
        Case{"128.0.0.0", AddressClass::kPublic},
        Case{"169.254.1.1", AddressClass::kLinkLocal},      // 169.254/16
        Case{"169.255.0.0", AddressClass::kPublic},
        Case{"172.16.0.0", AddressClass::kPrivate},         // 172.16/12
        Case{"192.0.0.0", AddressClass::kReserved},         // 192.0.0/24
        Case{"192.0.0.9", AddressClass::kReserved},         //   PCP anycast
        Case{"192.0.0.170", AddressClass::kReserved},       //   NAT64 discovery
        Case{"192.0.0.255", AddressClass::kReserved},
        Case{"192.0.1.0", AddressClass::kPublic},
        Case{"192.0.2.1", AddressClass::kDocumentation},    // 192.0.2/24 TEST-NET-1
        Case{"192.0.2.255", AddressClass::kDocumentation},
        Case{"192.0.3.0", AddressClass::kPublic},
        Case{"192.31.196.1", AddressClass::kReserved},      // 192.31.196/24 AS112-v4
        Case{"192.31.197.0", AddressClass::kPublic},
        Case{"192.52.193.1", AddressClass::kReserved},      // 192.52.193/24 AMT
        Case{"192.52.194.0", AddressClass::kPublic},
        Case{"192.88.99.1", AddressClass::kReserved},       // 192.88.99/24 6to4 relay
        Case{"192.88.99.255", AddressClass::kReserved},
        Case{"192.88.100.0", AddressClass::kPublic},
        Case{"192.168.0.0", AddressClass::kPrivate},        // 192.168/16
        Case{"192.175.48.1", AddressClass::kReserved},      // 192.175.48/24 AS112
        Case{"192.175.49.0", AddressClass::kPublic},
        Case{"198.18.0.0", AddressClass::kReserved},        // 198.18/15 benchmarking
        Case{"198.19.255.255", AddressClass::kReserved},
        Case{"198.20.0.0", AddressClass::kPublic},
        Case{"198.51.100.1", AddressClass::kDocumentation},  // 198.51.100/24 TEST-NET-2
        Case{"198.51.101.0", AddressClass::kPublic},
        Case{"203.0.113.0", AddressClass::kDocumentation},  // 203.0.113/24 TEST-NET-3
        Case{"203.0.114.0", AddressClass::kPublic},
        Case{"224.0.0.0", AddressClass::kMulticast},        // 224/4
        Case{"239.255.255.255", AddressClass::kMulticast},
        Case{"240.0.0.0", AddressClass::kReserved},         // 240/4
        Case{"255.255.255.254", AddressClass::kReserved},
        Case{"255.255.255.255", AddressClass::kBroadcast}));

// One case per entry of the IANA IPv6 Special-Purpose Address Registry (and
// multicast, site-local), with the neighbours that must stay public.
INSTANTIATE_TEST_SUITE_P(
    Ipv6Registry, ClassifyTest,
    ::testing::Values(
        Case{"::", AddressClass::kUnspecified},                  // ::/128
        Case{"::1", AddressClass::kLoopback},                    // ::1/128
        Case{"::ffff:192.168.0.1", AddressClass::kPrivate},      // ::ffff:0:0/96
        Case{"64:ff9b::10.0.0.1", AddressClass::kPrivate},       // 64:ff9b::/96
        Case{"64:ff9b:1::1", AddressClass::kPrivate},            // 64:ff9b:1::/48
        Case{"64:ff9b:1:ffff::1", AddressClass::kPrivate},
        Case{"64:ff9b:2::1", AddressClass::kPublic},
        Case{"100::", AddressClass::kReserved},                  // 100::/64 discard-only
        Case{"100::ffff:ffff:ffff:ffff", AddressClass::kReserved},
        Case{"100:0:0:1::1", AddressClass::kReserved},           // 100:0:0:1::/64 dummy
        Case{"100:0:0:2::1", AddressClass::kPublic},
        Case{"2001:1::1", AddressClass::kReserved},              // 2001::/23: PCP anycast
        Case{"2001:2::1", AddressClass::kReserved},              //   benchmarking
        Case{"2001:3::1", AddressClass::kReserved},              //   AMT
        Case{"2001:4:112::1", AddressClass::kReserved},          //   AS112-v6
        Case{"2001:10::1", AddressClass::kReserved},             //   ORCHID
        Case{"2001:20::1", AddressClass::kReserved},             //   ORCHIDv2
        Case{"2001:1ff:ffff::1", AddressClass::kReserved},       //   end of the /23
        Case{"2001:200::1", AddressClass::kPublic},              //   first past it
        Case{"2001:db8::", AddressClass::kDocumentation},        // 2001:db8::/32
        Case{"2001:db8:ffff::1", AddressClass::kDocumentation},
        Case{"2001:db9::1", AddressClass::kPublic},
        Case{"2620:4f:8000::1", AddressClass::kReserved},        // 2620:4f:8000::/48 AS112
        Case{"2620:4f:8001::1", AddressClass::kPublic},
        Case{"3fff::1", AddressClass::kDocumentation},           // 3fff::/20
        Case{"3fff:fff::1", AddressClass::kDocumentation},
        Case{"3fff:1000::1", AddressClass::kPublic},
        Case{"5f00::1", AddressClass::kReserved},                // 5f00::/16 SRv6 SIDs
        Case{"5f01::1", AddressClass::kPublic},
        Case{"fc00::", AddressClass::kPrivate},                  // fc00::/7
        Case{"fdff:ffff::1", AddressClass::kPrivate},
        Case{"fe00::1", AddressClass::kPublic},
        Case{"fe80::", AddressClass::kLinkLocal},                // fe80::/10
        Case{"fec0::", AddressClass::kPrivate},                  // fec0::/10
        Case{"ff00::", AddressClass::kMulticast},                // ff00::/8
        Case{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kMulticast}));

TEST(ParseIpAddressTest, RejectsNamesAndShorthands) {
  // Shorthands are resolved by the resolver and judged as 127.0.0.1 then.
  EXPECT_FALSE(ParseIpAddress("localhost").has_value());
  EXPECT_FALSE(ParseIpAddress("127.1").has_value());
  EXPECT_FALSE(ParseIpAddress("2130706433").has_value());
  EXPECT_FALSE(ParseIpAddress("0x7f000001").has_value());
  EXPECT_FALSE(ParseIpAddress("").has_value());
}

TEST(ParseIpAddressTest, RoundTripsCanonicalText) {
  EXPECT_EQ(Parse("127.0.0.1").ToString(), "127.0.0.1");
  EXPECT_EQ(Parse("[::1]").ToString(), "::1");
  EXPECT_EQ(Parse("::ffff:7f00:1").ToString(), "::ffff:127.0.0.1");
  EXPECT_EQ(Parse("FD00:EC2:0::254").ToString(), "fd00:ec2::254");
}

TEST(IpAddressFromSockaddrTest, ReadsBothFamilies) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "169.254.169.254", &in.sin_addr);
  auto v4 = IpAddressFromSockaddr(reinterpret_cast<sockaddr*>(&in), sizeof(in));
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->ToString(), "169.254.169.254");

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr);
  auto v6 = IpAddressFromSockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof(in6));
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(ClassifyAddress(*v6), AddressClass::kPrivate);

  EXPECT_FALSE(IpAddressFromSockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof(in)).has_value());
}

TEST(ParseIpNetworkTest, ParsesPrefixesAndBareAddresses) {
  auto network = ParseIpNetwork("127.0.0.1/32");
  ASSERT_TRUE(network.ok()) << network.status();
  EXPECT_TRUE(network->Contains(Parse("127.0.0.1")));
  EXPECT_FALSE(network->Contains(Parse("127.0.0.2")));
  // A v4 entry covers the ::ffff: form a dual-stack socket would use.
  EXPECT_TRUE(network->Contains(Parse("::ffff:127.0.0.1")));
  EXPECT_FALSE(network->Contains(Parse("::1")));

  auto bare = ParseIpNetwork("::1");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->prefix_length, 128);

  auto wide = ParseIpNetwork("10.0.0.0/8");
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_TRUE(wide->Contains(Parse("10.200.3.4")));
  EXPECT_FALSE(wide->Contains(Parse("11.0.0.0")));

  auto odd = ParseIpNetwork("fc00::/7");
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_TRUE(odd->Contains(Parse("fc00::1")));
  EXPECT_FALSE(odd->Contains(Parse("fe00::1")));
}

TEST(ParseIpNetworkTest, RejectsBadText) {
  EXPECT_EQ(ParseIpNetwork("localhost/32").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIpNetwork("10.0.0.0/33").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIpNetwork("::/129").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIpNetwork("10.0.0.0/x").status().code(), absl::StatusCode::kInvalidArgument);
  auto host_bits = ParseIpNetwork("10.0.0.1/8");
  EXPECT_EQ(host_bits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(host_bits.status().message().find("10.0.0.0/8"), absl::string_view::npos)
      << host_bits.status();
}

TEST(SsrfGuardTest, DefaultRefusesSpecialAndAllowsPublic) {
  SsrfGuard guard;
  for (const char* blocked :
       {"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fc00::1", "fe80::1",
        "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "ff02::1"}) {
    absl::Status status = guard.Check("example.test", Parse(blocked));
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << blocked;
    EXPECT_EQ(ErrorReason(status), "DESTINATION_BLOCKED") << blocked;
  }
  for (const char* allowed : {"8.8.8.8", "1.1.1.1", "2001:4860::8888", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(guard.Check("example.test", Parse(allowed)).ok()) << allowed;
  }
}

TEST(SsrfGuardTest, RefusalNamesHostAndClassButNotTheAddress) {
  SsrfGuard guard;
  absl::Status status = guard.Check("metadata.internal", Parse("169.254.169.254"));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(status.message().find("metadata.internal"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("cloud-metadata"), absl::string_view::npos) << status;
  // Naming the address would tell the caller what an internal name resolves to.
  EXPECT_EQ(status.ToString().find("169.254"), std::string::npos) << status;
  google::rpc::Status rpc = ToRpcStatus(status);
  EXPECT_EQ(rpc.DebugString().find("169.254"), std::string::npos) << rpc.DebugString();
}

TEST(SsrfGuardTest, RefusesTheRangesTheReviewFoundPublic) {
  SsrfGuard guard;
  for (const char* blocked : {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2001:1::1",
                              "192.88.99.1", "3fff::1", "5f00::1", "2001:0:1:2:3:4:5601:5601"}) {
    EXPECT_EQ(guard.Check("example.test", Parse(blocked)).code(),
              absl::StatusCode::kPermissionDenied)
        << blocked;
  }
}

TEST(SsrfGuardTest, AllowListAdmitsOnlyItsNetworks) {
  SsrfPolicy policy;
  policy.allowed_networks.push_back(*ParseIpNetwork("127.0.0.1/32"));
  SsrfGuard guard(policy);
  EXPECT_TRUE(guard.Check("127.0.0.1", Parse("127.0.0.1")).ok());
  EXPECT_TRUE(guard.Check("h", Parse("::ffff:127.0.0.1")).ok());
  EXPECT_EQ(guard.Check("h", Parse("127.0.0.2")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(guard.Check("h", Parse("::1")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(guard.Check("h", Parse("10.0.0.1")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(guard.Check("h", Parse("8.8.8.8")).ok());
}

TEST(SsrfGuardTest, AllowPrivateNetworksAdmitsEverything) {
  SsrfPolicy policy;
  policy.allow_private_networks = true;
  SsrfGuard guard(policy);
  for (const char* address : {"127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00:ec2::254"}) {
    EXPECT_TRUE(guard.Check("h", Parse(address)).ok()) << address;
  }
}

}  // namespace
}  // namespace conveyor
