#include "backend/drive_config.h"

#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace shardfs::backend {

namespace {

constexpr int kMaxShardsPerPack = 32;
constexpr size_t kMaxNameLength = 64;

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Status ValidateDriveConfig(const DriveConfig& c) {
  if (c.name.empty() || c.name.size() > kMaxNameLength || c.name.front() == '.') {
    return Status::InvalidArgument("drive name must be 1 to 64 characters, not starting with '.'");
  }
  for (char ch : c.name) {
    if (!NameChar(ch)) {
      return Status::InvalidArgument("drive name '" + c.name +
                                     "' may only use letters, digits, '.', '_' and '-'");
    }
  }
  if (c.k < 1 || c.m < 1 || c.k + c.m > kMaxShardsPerPack) {
    return Status::InvalidArgument("k and m must be at least 1, and k + m at most 32 (got k=" +
                                   std::to_string(c.k) + ", m=" + std::to_string(c.m) + ")");
  }
  std::set<std::string> seen;
  for (const DriveNode& n : c.nodes) {
    if (n.address.empty()) return Status::InvalidArgument("empty node address");
    if (!seen.insert(n.address).second) {
      return Status::InvalidArgument("node " + n.address + " is listed twice");
    }
  }
  return Status::Ok();
}

std::string EncodeDriveConfig(const DriveConfig& c) {
  toml::array nodes;
  for (const DriveNode& n : c.nodes) {
    nodes.push_back(toml::table{{"address", n.address}, {"id", n.id.ToHex()}});
  }
  toml::table t{{"format", kDriveConfigFormat},
                {"name", c.name},
                {"k", c.k},
                {"m", c.m},
                {"nodes", std::move(nodes)}};
  std::ostringstream out;
  out << "# shardfs drive configuration (docs/format.md, \"Drive config\")\n" << t << "\n";
  return out.str();
}

Result<DriveConfig> ParseDriveConfig(std::string_view text) {
  // toml++ is built with exceptions here: a syntax error is a toml::parse_error, caught at
  // once so no exception leaves this function.
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& err) {
    return Status::InvalidArgument("line " + std::to_string(err.source().begin.line) + ": " +
                                   std::string(err.description()));
  }
  for (const auto& [key, value] : t) {
    std::string_view k = key.str();
    if (k != "format" && k != "name" && k != "k" && k != "m" && k != "nodes") {
      return Status::InvalidArgument("unknown key '" + std::string(k) + "'");
    }
  }
  auto format = t["format"].value<int64_t>();
  if (!format) return Status::InvalidArgument("'format' (an integer) is missing");
  if (*format != kDriveConfigFormat) {
    return Status::NotSupported("drive config format " + std::to_string(*format) +
                                "; this shardfs reads format " +
                                std::to_string(kDriveConfigFormat));
  }
  DriveConfig c;
  auto name = t["name"].value<std::string>();
  auto k = t["k"].value<int64_t>();
  auto m = t["m"].value<int64_t>();
  if (!name || !k || !m) {
    return Status::InvalidArgument("'name' (a string), 'k' and 'm' (integers) are required");
  }
  if (*k < 0 || *k > kMaxShardsPerPack || *m < 0 || *m > kMaxShardsPerPack) {
    return Status::InvalidArgument("k and m must be at least 1, and k + m at most 32");
  }
  c.name = *name;
  c.k = static_cast<int>(*k);
  c.m = static_cast<int>(*m);
  if (const toml::node* nodes = t.get("nodes")) {
    const toml::array* arr = nodes->as_array();
    if (arr == nullptr) return Status::InvalidArgument("'nodes' must be an array of tables");
    for (const toml::node& item : *arr) {
      const toml::table* n = item.as_table();
      if (n == nullptr) return Status::InvalidArgument("'nodes' must be an array of tables");
      for (const auto& [key, value] : *n) {
        if (key.str() != "address" && key.str() != "id") {
          return Status::InvalidArgument("unknown key '" + std::string(key.str()) + "' in a node");
        }
      }
      auto address = (*n)["address"].value<std::string>();
      auto id = (*n)["id"].value<std::string>();
      if (!address || !id) {
        return Status::InvalidArgument("a node needs 'address' and 'id' (strings)");
      }
      auto node_id = NodeId::FromHex(*id);
      if (!node_id.ok()) {
        return Status::InvalidArgument("node " + *address + ": id is not 64 hex digits");
      }
      c.nodes.push_back(DriveNode{*address, *node_id});
    }
  }
  SFS_RETURN_IF_ERROR(ValidateDriveConfig(c));
  return c;
}

}  // namespace shardfs::backend
