// A storage node's identity: an ed25519 key pair kept in its data folder (docs/format.md,
// "Node key file"); the node id is the public key.
//
// Thread safety: functions may be called from any thread; two processes creating the key in
// one folder at once race (the store's folder lock keeps a second node out first).

#ifndef SHARDFS_NET_NODE_IDENTITY_H_
#define SHARDFS_NET_NODE_IDENTITY_H_

#include <string>

#include "base/status.h"
#include "crypto/sign.h"

namespace shardfs::net {

// The file name of the key inside a node's data folder.
inline constexpr const char* kNodeKeyFile = "node.key";

// Reads the node key from `dir`/node.key, creating the folder (0700) and a new key (0600) if
// there is none. Corruption if the file is damaged; NotSupported for a newer version;
// IOError/PermissionDenied from the disk.
Result<crypto::SigningKey> LoadOrCreateNodeKey(const std::string& dir);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_NODE_IDENTITY_H_
