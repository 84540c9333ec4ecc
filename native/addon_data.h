// Per-environment state: each worker thread loads its own copy of the classes.
#pragma once

#include <napi.h>

namespace osc {

struct AddonData {
  Napi::FunctionReference secure_context;  // to recognise our SecureContext objects
};

inline AddonData& DataOf(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace osc
