// HOST:PORT strings as given on command lines and in configs.
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_ADDRESS_H_
#define SHARDFS_NET_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shardfs::net {

struct HostPort {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;
  std::string ToString() const;  // brackets around IPv6 addresses
};

// Parses "host:port", "[v6]:port". InvalidArgument for anything else, a port of 0 unless
// `allow_zero_port`, or a port above 65535.
Result<HostPort> ParseHostPort(std::string_view text, bool allow_zero_port = false);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_ADDRESS_H_
