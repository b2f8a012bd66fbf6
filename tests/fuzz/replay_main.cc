// A main() for fuzz targets when libFuzzer is not available (builds with GCC): runs the
// target on every file given (or every file in every folder given), and on deterministic
// damaged variants of each (every single-bit flip of the first 512 bytes, every truncation
// of the first 512 bytes and a sample of the rest, and byte-pattern overwrites), so the
// parsers are exercised on corrupted input in every build. Exits non-zero only if a target
// crashes (which ends the process anyway) or no input was found.

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void RunOne(const std::vector<uint8_t>& in) {
  // Copy to an exact-size heap block so out-of-bounds reads hit the sanitizer's red zone.
  auto* buf = new uint8_t[in.size() + 1];
  if (!in.empty()) std::memcpy(buf, in.data(), in.size());
  LLVMFuzzerTestOneInput(buf, in.size());
  delete[] buf;
}

size_t RunVariants(const std::vector<uint8_t>& in) {
  size_t runs = 0;
  RunOne(in);
  ++runs;
  const size_t head = std::min<size_t>(in.size(), 512);
  for (size_t bit = 0; bit < head * 8; ++bit) {
    std::vector<uint8_t> v = in;
    v[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    RunOne(v);
    ++runs;
  }
  size_t step = in.size() > 4096 ? in.size() / 512 : 1;
  for (size_t n = 0; n < in.size(); n += (n < 512 ? 1 : step)) {
    RunOne(std::vector<uint8_t>(in.begin(), in.begin() + n));
    ++runs;
  }
  for (uint8_t fill : {0x00, 0xff}) {
    for (size_t at = 0; at < in.size(); at += std::max<size_t>(1, in.size() / 64)) {
      std::vector<uint8_t> v = in;
      for (size_t i = at; i < std::min(in.size(), at + 8); ++i) v[i] = fill;
      RunOne(v);
      ++runs;
    }
  }
  return runs;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t files = 0, runs = 0;
  for (int a = 1; a < argc; ++a) {
    std::vector<std::string> paths;
    struct stat st;
    if (stat(argv[a], &st) == 0 && S_ISDIR(st.st_mode)) {
      if (DIR* d = opendir(argv[a])) {
        while (dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe): one thread
          if (e->d_name[0] != '.') paths.push_back(std::string(argv[a]) + "/" + e->d_name);
        }
        closedir(d);
      }
    } else {
      paths.push_back(argv[a]);
    }
    for (const auto& p : paths) {
      std::vector<uint8_t> in;
      if (!ReadFile(p, &in)) continue;
      runs += RunVariants(in);
      ++files;
    }
  }
  std::printf("replayed %zu inputs from %zu files\n", runs, files);
  return files == 0 ? 1 : 0;
}
