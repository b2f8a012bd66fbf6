// Options of a drive over in-memory nodes for unit tests (RS 4+2 over six MemoryPeers behind
// FaultyPeers, small chunks and packs, no fsync, a quick uploader), shared by the tests of
// the faces on a drive (FUSE, the companion API).

#ifndef SHARDFS_TESTS_MEMORY_DRIVE_H_
#define SHARDFS_TESTS_MEMORY_DRIVE_H_

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backend/drive.h"
#include "backend/memory_peer.h"
#include "crypto/sign.h"
#include "tests/faulty_peer.h"

namespace shardfs::test {

// Options for a drive with its catalog and staging area in `dir`, over `nodes` fresh
// in-memory nodes of `capacity` bytes each; the peers (and the nodes behind them) are also
// put in *peers (*mems) if given.
inline backend::DriveOptions MemoryDriveOptions(
    const std::string& dir, int nodes = 6, uint64_t capacity = uint64_t{1} << 30,
    std::vector<std::shared_ptr<FaultyPeer>>* peers = nullptr,
    std::vector<std::shared_ptr<backend::MemoryPeer>>* mems = nullptr) {
  backend::DriveOptions o;
  o.master = crypto::MasterKey::Generate();
  auto owner = crypto::SigningKey::ForOwner(o.master);
  o.config.k = 4;
  o.config.m = 2;
  for (int i = 0; i < nodes; ++i) {
    auto mem = std::make_shared<backend::MemoryPeer>("node" + std::to_string(i), owner.public_key(),
                                                     capacity);
    auto peer = std::make_shared<FaultyPeer>(mem);
    if (peers != nullptr) peers->push_back(peer);
    if (mems != nullptr) mems->push_back(mem);
    std::array<uint8_t, 32> id{};
    id[0] = static_cast<uint8_t>(i + 1);
    o.config.nodes.push_back(
        backend::DriveNode{"127.0.0.1:" + std::to_string(7001 + i), NodeId(id)});
    o.peers.push_back(peer);
  }
  o.catalog_path = dir + "/catalog.db";
  o.staging_dir = dir + "/staging";
  o.sync = false;
  o.pipeline.chunker = {16 * 1024, 64 * 1024, 256 * 1024, 0};
  o.pipeline.pack_target_size = 1 << 20;
  o.pipeline.threads = 2;
  o.uploader.quiet = std::chrono::milliseconds(50);
  o.uploader.retry_wait = std::chrono::milliseconds(100);
  return o;
}

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_MEMORY_DRIVE_H_
