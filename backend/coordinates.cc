#include "backend/coordinates.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "base/splitmix64.h"

namespace shardfs::backend {

namespace {

double Norm(const std::array<double, kCoordinateDims>& v) {
  double sum = 0;
  for (double x : v) sum += x * x;
  return std::sqrt(sum);
}

bool Finite(double x, double lo, double hi) { return std::isfinite(x) && x >= lo && x <= hi; }

}  // namespace

double PredictRtt(const Coordinate& a, const Coordinate& b) {
  std::array<double, kCoordinateDims> d;
  for (int i = 0; i < kCoordinateDims; ++i) d[i] = a.vec[i] - b.vec[i];
  return Norm(d) + a.height + b.height;
}

Status ValidateCoordinate(const Coordinate& c) {
  for (double x : c.vec) {
    if (!Finite(x, -1e6, 1e6)) return Status::InvalidArgument("coordinate component out of range");
  }
  if (!Finite(c.height, 0, 1e6)) return Status::InvalidArgument("coordinate height out of range");
  if (!Finite(c.error, 0, 1e3)) return Status::InvalidArgument("coordinate error out of range");
  return Status::Ok();
}

Vivaldi::Vivaldi(VivaldiOptions options, uint64_t seed) : options_(options), rng_(seed) {
  coord_.height = options_.min_height;
  coord_.error = options_.max_error;
}

void Vivaldi::Reset(const Coordinate& saved) {
  if (!ValidateCoordinate(saved).ok()) return;
  coord_ = saved;
  coord_.height = std::max(coord_.height, options_.min_height);
  coord_.error = std::min(coord_.error, options_.max_error);
}

bool Vivaldi::Update(const Coordinate& remote, double rtt_ms) {
  if (!std::isfinite(rtt_ms) || rtt_ms <= 0 || !ValidateCoordinate(remote).ok()) return false;
  // How much this sample counts: more when we are less sure of ourselves than the remote is
  // of itself.
  double total_error = coord_.error + remote.error;
  double w = total_error > 0 ? coord_.error / total_error : 0.5;
  double dist = PredictRtt(coord_, remote);
  double sample_error = std::abs(dist - rtt_ms) / rtt_ms;
  coord_.error = sample_error * options_.ce * w + coord_.error * (1 - options_.ce * w);
  coord_.error = std::min(coord_.error, options_.max_error);

  // Move along the unit vector from the remote to us in the height space: [x - y, hx + hy]
  // over its norm |x - y| + hx + hy. Positive force pushes us away (the prediction was too
  // short), negative pulls us closer.
  double force = options_.cc * w * (rtt_ms - dist);
  std::array<double, kCoordinateDims> diff;
  for (int i = 0; i < kCoordinateDims; ++i) diff[i] = coord_.vec[i] - remote.vec[i];
  double mag = Norm(diff);
  if (mag < 1e-9) {
    // The points coincide (two new coordinates): any direction will do, as long as two hosts
    // do not all pick the same one.
    for (double& x : diff) {
      x = static_cast<double>(SplitMix64Next(&rng_) >> 11) / static_cast<double>(1ull << 53) - 0.5;
    }
    double n = Norm(diff);
    for (double& x : diff) x /= n;
    mag = 1;
  }
  double norm = mag + coord_.height + remote.height;
  for (int i = 0; i < kCoordinateDims; ++i) coord_.vec[i] += force * diff[i] / norm;
  coord_.height += force * (coord_.height + remote.height) / norm;
  coord_.height = std::max(coord_.height, options_.min_height);
  // Keep the point within what ValidateCoordinate accepts, whatever the samples were.
  for (double& x : coord_.vec) x = std::clamp(x, -1e6, 1e6);
  coord_.height = std::min(coord_.height, 1e6);
  return true;
}

void PutCoordinate(ByteWriter& w, const Coordinate& c) {
  for (double x : c.vec) w.U64(std::bit_cast<uint64_t>(x));
  w.U64(std::bit_cast<uint64_t>(c.height));
  w.U64(std::bit_cast<uint64_t>(c.error));
}

bool GetCoordinate(ByteReader& r, Coordinate* c) {
  uint64_t bits = 0;
  for (double& x : c->vec) {
    if (!r.U64(&bits)) return false;
    x = std::bit_cast<double>(bits);
  }
  if (!r.U64(&bits)) return false;
  c->height = std::bit_cast<double>(bits);
  if (!r.U64(&bits)) return false;
  c->error = std::bit_cast<double>(bits);
  return true;
}

Bytes EncodeCoordinate(const Coordinate& c) {
  Bytes b;
  ByteWriter w(&b);
  PutCoordinate(w, c);
  return b;
}

Result<Coordinate> DecodeCoordinate(ByteSpan b) {
  ByteReader r(b);
  Coordinate c;
  if (!GetCoordinate(r, &c) || !r.AtEnd()) {
    return Status::InvalidArgument("a coordinate is " + std::to_string(kCoordinateBytes) +
                                   " bytes");
  }
  if (Status s = ValidateCoordinate(c); !s.ok()) return s;
  return c;
}

double RttFilter::Add(const NodeId& node, double rtt_ms) {
  auto& window = samples_[node];
  window.push_back(rtt_ms);
  while (window.size() > window_) window.pop_front();
  return *Median(node);
}

std::optional<double> RttFilter::Median(const NodeId& node) const {
  auto it = samples_.find(node);
  if (it == samples_.end() || it->second.empty()) return std::nullopt;
  std::vector<double> v(it->second.begin(), it->second.end());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace shardfs::backend
