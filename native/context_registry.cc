#include "context_registry.h"

#include <openssl/rand.h>

#include <mutex>
#include <unordered_map>

namespace osc {

namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<std::string, std::weak_ptr<ContextCore>> by_id;
  std::unordered_map<const ContextCore*, std::string> ids;
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

// Drops the entries of contexts that are gone (called with the lock held). A context's address is not
// reused while its weak_ptr is here (the control block holds its storage), so `ids` stays exact.
void Prune(Registry& r) {
  for (auto it = r.by_id.begin(); it != r.by_id.end();) {
    if (!it->second.expired()) {
      ++it;
      continue;
    }
    for (auto p = r.ids.begin(); p != r.ids.end(); ++p) {
      if (p->second == it->first) {
        r.ids.erase(p);
        break;
      }
    }
    it = r.by_id.erase(it);
  }
}

}  // namespace

std::string ShareContext(const std::shared_ptr<ContextCore>& core) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  Prune(r);
  auto known = r.ids.find(core.get());
  if (known != r.ids.end()) return known->second;
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw TlsError("ERR_OSC_OPENSSL", "no random bytes for a shared id");
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : raw) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  r.by_id.emplace(id, core);
  r.ids.emplace(core.get(), id);
  return id;
}

std::shared_ptr<ContextCore> FindSharedContext(const std::string& id) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.by_id.find(id);
  return it == r.by_id.end() ? nullptr : it->second.lock();
}

}  // namespace osc
