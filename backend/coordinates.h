// Network coordinates (Vivaldi, with height: Dabek, Cox, Kaashoek and Morris, SIGCOMM 2004).
// Each storage node keeps a coordinate fitted to the round-trip times of its gossip pings, and
// publishes it in its member record; a client fits its own against the nodes' and predicts
// the round trip to any node as the distance between the two coordinates, before it has
// measured anything (docs/network.md, "Coordinates").
//
// A coordinate is a point in a 4-dimensional Euclidean space plus a height: the distance of
// two coordinates is the Euclidean distance of their points plus both heights. The height
// models a host's access link (every path to it pays that much), which a plane does not; it is
// what lets a node behind a slow link sit "above" the others instead of far from all of them.
//
// Units are milliseconds.
//
// Thread safety: Coordinate is a value; a Vivaldi is used by one thread at a time.

#ifndef SHARDFS_BACKEND_COORDINATES_H_
#define SHARDFS_BACKEND_COORDINATES_H_

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"

namespace shardfs::backend {

inline constexpr int kCoordinateDims = 4;

struct VivaldiOptions {
  // A sample moves the coordinate by this fraction of its error, weighted by how confident
  // this side is relative to the other (the paper's c_c).
  double cc = 0.25;
  // Weight of a sample in the moving error estimate (the paper's c_e).
  double ce = 0.25;
  // The error a new coordinate starts with, and the most it may grow to (relative: 1.0 means
  // predictions are off by as much as they predict).
  double max_error = 1.5;
  // The least height, in ms: no path is shorter than a host's own stack.
  double min_height = 0.01;
};

struct Coordinate {
  std::array<double, kCoordinateDims> vec{};
  double height = 0.01;  // ms
  double error = 1.5;    // relative confidence, lower is better

  friend bool operator==(const Coordinate&, const Coordinate&) = default;
};

// The predicted round-trip time between the holders of `a` and `b`, in ms.
double PredictRtt(const Coordinate& a, const Coordinate& b);

// InvalidArgument unless every component is finite, the vector within +-1e6 ms, the height in
// [0, 1e6] ms and the error in [0, 1e3]: what a coordinate from the network must satisfy before
// it is used (a node could send anything).
Status ValidateCoordinate(const Coordinate& c);

// The coordinate's encoding in member records, gossip packets and the catalog: 4 components,
// the height and the error, as little-endian IEEE-754 doubles (48 bytes).
inline constexpr size_t kCoordinateBytes = 8 * (kCoordinateDims + 2);
void PutCoordinate(ByteWriter& w, const Coordinate& c);
// False if `r` runs out (the reader is then failed). The values are NOT validated.
bool GetCoordinate(ByteReader& r, Coordinate* c);
Bytes EncodeCoordinate(const Coordinate& c);
// InvalidArgument unless `b` is exactly one encoded coordinate that ValidateCoordinate takes.
Result<Coordinate> DecodeCoordinate(ByteSpan b);

// One host's coordinate, fitted sample by sample.
class Vivaldi {
 public:
  // `seed` picks the direction of the first moves (when two coordinates coincide).
  explicit Vivaldi(VivaldiOptions options = {}, uint64_t seed = 1);

  const Coordinate& coordinate() const { return coord_; }
  // Starts from a saved coordinate (a client's, from its catalog). Invalid ones are ignored.
  void Reset(const Coordinate& saved);

  // Moves this coordinate after a measured round trip of `rtt_ms` to a host at `remote`.
  // Samples that are not positive and finite, or remotes that fail ValidateCoordinate, are
  // ignored (false).
  bool Update(const Coordinate& remote, double rtt_ms);

 private:
  VivaldiOptions options_;
  Coordinate coord_;
  uint64_t rng_;
};

// Keeps the last few round-trip samples per node and gives their median: one delayed packet
// should not throw a coordinate off (the median of three, as Ledlie, Gardner and Seltzer found
// works well, NSDI 2007).
class RttFilter {
 public:
  explicit RttFilter(size_t window = 3) : window_(window) {}
  // Adds a sample for `node`; returns the median of its window.
  double Add(const NodeId& node, double rtt_ms);
  // The median of `node`'s window, or nullopt if it has no samples.
  std::optional<double> Median(const NodeId& node) const;
  void Forget(const NodeId& node) { samples_.erase(node); }

 private:
  size_t window_;
  std::unordered_map<NodeId, std::deque<double>> samples_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_COORDINATES_H_
