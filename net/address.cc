#include "net/address.h"

#include <charconv>

namespace shardfs::net {

std::string HostPort::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text, bool allow_zero_port) {
  auto bad = [&](std::string why) {
    return Status::InvalidArgument("'" + std::string(text.substr(0, 200)) + "' is not HOST:PORT (" +
                                   why + ")");
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("an IPv6 address goes in brackets: [::1]:7070");
    }
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return bad("an IPv6 address goes in brackets");
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) return bad("no host");
  for (char c : hp.host) {
    if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == '[' || c == ']') {
      return bad("bad character in host");
    }
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return bad("port must be 1 to 65535");
  }
  if (value == 0 && !allow_zero_port) return bad("port must be 1 to 65535");
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

}  // namespace shardfs::net
