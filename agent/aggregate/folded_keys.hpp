// The keys a bounded table folded into its `other` row: counted once when
// first folded and remembered (up to kMaxFoldedKeys) so that they stay in
// `other` until idle, instead of taking a slot freed later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>

namespace connscope {

inline constexpr size_t kMaxFoldedKeys = 65536;

template <class Key>
class FoldedKeys {
 public:
  bool contains(const Key& k) const { return keys_.count(k) != 0; }
  // contains(), and refreshes the key's last-seen time.
  bool touch(const Key& k, uint64_t ts) {
    auto it = keys_.find(k);
    if (it == keys_.end()) return false;
    it->second = ts;
    return true;
  }
  void add(const Key& k, uint64_t ts) {
    total_++;
    if (keys_.size() < kMaxFoldedKeys) keys_.emplace(k, ts);
  }
  void prune(uint64_t now, uint64_t idle_ns) {
    for (auto it = keys_.begin(); it != keys_.end();) it = it->second + idle_ns < now ? keys_.erase(it) : std::next(it);
  }
  uint64_t total() const { return total_; }

 private:
  std::map<Key, uint64_t> keys_;  // -> last seen (monotonic ns)
  uint64_t total_ = 0;
};

}  // namespace connscope
