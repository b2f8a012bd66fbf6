#include "cli/drive_open.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

#include "backend/drive_config.h"
#include "base/file.h"
#include "cli/drive_home.h"
#include "cli/local_network.h"
#include "crypto/key_file.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/http_membership.h"
#include "net/http_peer.h"

namespace shardfs::cli {

namespace {
constexpr size_t kMaxConfigFile = 1 << 20;
constexpr size_t kMaxPassphraseFile = 4096;
}  // namespace

void AddDriveFlags(CLI::App* cmd, DriveFlags* flags) {
  cmd->add_option("--home", flags->home,
                  "The drive's folder (default: the XDG folders of --drive)");
  cmd->add_option("--drive", flags->drive, "The drive's name")->capture_default_str();
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "The key file's passphrase, on this file's first line");
}

Result<std::string> ReadPassphraseFile(const std::string& path) {
  SFS_ASSIGN_OR_RETURN(Bytes raw, ReadFile(path, kMaxPassphraseFile));
  std::string text(raw.begin(), raw.end());
  if (size_t nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return Status::InvalidArgument("the passphrase file's first line is empty");
  return text;
}

Result<std::unique_ptr<backend::Drive>> OpenDrive(const DriveFlags& flags,
                                                  const std::string& holder, bool care) {
  SFS_ASSIGN_OR_RETURN(DriveHome home, ResolveDriveHome(flags.home, flags.drive));
  if (!std::filesystem::exists(home.config_file())) {
    return Status::NotFound("no drive in " + home.config_dir + " (create one with shardfs init)");
  }
  SFS_ASSIGN_OR_RETURN(Bytes text, ReadFile(home.config_file(), kMaxConfigFile));
  auto config = backend::ParseDriveConfig(
      std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
  if (!config.ok()) return config.status().WithContext(home.config_file());
  // A drive with its own nodes on this machine starts those that do not run.
  if (auto local = ReadLocalNetwork(home); local.ok()) {
    SFS_RETURN_IF_ERROR(StartLocalNetwork(*local));
  } else if (local.status().code() != Code::kNotFound) {
    return local.status();
  }
  std::optional<std::string> passphrase;
  if (!flags.passphrase_file.empty()) {
    SFS_ASSIGN_OR_RETURN(passphrase, ReadPassphraseFile(flags.passphrase_file));
  }
  SFS_ASSIGN_OR_RETURN(crypto::MasterKey master, crypto::ReadKeyFile(home.key_file(), passphrase));
  auto owner = std::make_shared<const crypto::SigningKey>(crypto::SigningKey::ForOwner(master));
  backend::DriveOptions o;
  o.config = *config;
  o.master = master;
  o.catalog_path = home.catalog_file();
  o.staging_dir = home.staging_dir();
  o.cache_dir = home.chunk_cache_dir();
  o.holder = holder;
  o.pipeline.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  // A command's process is short: its changes are checkpointed before it ends.
  o.checkpoint.on_close = true;
  o.care = care;
  std::vector<net::HostPort> addresses;
  for (const backend::DriveNode& n : config->nodes) {
    auto address = net::ParseHostPort(n.address);
    if (!address.ok()) return address.status().WithContext(home.config_file());
    addresses.push_back(*address);
    // The node id from the config: no round trip now, and a node that changed its key is
    // refused by the signature check instead of trusted.
    SFS_ASSIGN_OR_RETURN(auto peer,
                         net::HttpPeer::Connect(*address, owner, net::HttpPeerOptions{}, n.id));
    o.peers.push_back(std::move(peer));
  }
  o.membership = std::make_shared<net::HttpMembership>(std::move(addresses));
  return backend::Drive::Open(std::move(o));
}

std::vector<std::string> PathParts(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  std::string name;
  while (std::getline(in, name, '/')) {
    if (!name.empty() && name != ".") parts.push_back(name);
  }
  return parts;
}

Status CheckDrivePath(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return Status::InvalidArgument("'" + path + "' is not an absolute drive path");
  }
  for (const std::string& name : PathParts(path)) {
    if (name == "..") return Status::InvalidArgument("'..' in a drive path");
  }
  return Status::Ok();
}

Result<backend::InodeAttr> ResolvePath(backend::Catalog& catalog, const std::string& path) {
  SFS_RETURN_IF_ERROR(CheckDrivePath(path));
  SFS_ASSIGN_OR_RETURN(backend::InodeAttr at, catalog.GetAttr(backend::kRootIno));
  for (const std::string& name : PathParts(path)) {
    auto next = catalog.Lookup(at.ino, name);
    if (!next.ok()) return next.status();
    at = *next;
  }
  return at;
}

Result<std::pair<backend::Ino, std::string>> ResolveParent(backend::Catalog& catalog,
                                                           const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (p.empty() || p.front() != '/' || slash == std::string::npos) {
    return Status::InvalidArgument("'" + path + "' is not an absolute drive path");
  }
  std::string name = p.substr(slash + 1);
  if (name.empty()) return Status::InvalidArgument("'/' has no parent");
  SFS_ASSIGN_OR_RETURN(backend::InodeAttr parent,
                       ResolvePath(catalog, slash == 0 ? "/" : p.substr(0, slash)));
  return std::make_pair(parent.ino, name);
}

}  // namespace shardfs::cli
