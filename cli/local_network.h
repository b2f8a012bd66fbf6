// A drive's own network of storage nodes on this machine (`shardfs init --local-network N`),
// so that one machine works with no outside peer: N `shardfs node` processes on loopback
// ports, their data in the drive's data folder (docs/format.md, "Local network"). Every
// command that opens the drive starts the ones that are not running (as daemons, which keep
// running after it), but those held down; `shardfs local-network stop` stops them, and with
// node numbers holds those down (to see the drive work without them) until `start`.
//
// Thread safety: functions; a command calls them from one thread.

#ifndef SHARDFS_CLI_LOCAL_NETWORK_H_
#define SHARDFS_CLI_LOCAL_NETWORK_H_

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/status.h"
#include "cli/drive_home.h"

namespace shardfs::cli {

struct LocalNode {
  std::string address;   // 127.0.0.1:PORT
  std::string dir;       // its folder: data/, node.log, pid, ready
  std::string capacity;  // --capacity of its node
};

// The folder of the drive's local network, and its list of nodes in it.
inline std::string LocalNetworkDir(const DriveHome& h) { return h.data_dir + "/local-network"; }

// The nodes of the drive's local network; NotFound if the drive has none.
Result<std::vector<LocalNode>> ReadLocalNetwork(const DriveHome& home);

// Makes a local network of `count` nodes (free loopback ports picked now, kept for good),
// each keeping at most `capacity` (as `shardfs node --capacity`), and starts it. AlreadyExists
// if the drive has one.
Result<std::vector<LocalNode>> CreateLocalNetwork(const DriveHome& home, int count,
                                                  const std::string& capacity);

// Whether a start leaves alone the nodes `shardfs local-network stop I` held down (what every
// command that opens the drive does), or releases them and starts them too (`start`).
enum class HeldNodes { kLeaveDown, kRelease };

// Starts every node of the list that does not answer on its address (but those held down,
// with kLeaveDown), and waits (15 s) until each has started. Unavailable, naming the node and
// its log's last line, if one does not.
Status StartLocalNetwork(const std::vector<LocalNode>& nodes,
                         HeldNodes held = HeldNodes::kLeaveDown);

// Stops the nodes it started (SIGTERM, then SIGKILL after 30 s); how many were running. With
// `hold`, each is also held down: no command starts it again but `local-network start`.
Result<int> StopLocalNetwork(const std::vector<LocalNode>& nodes, bool hold = false);

// `shardfs local-network start|stop`.
std::function<int()> AddLocalNetworkCommand(CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_LOCAL_NETWORK_H_
