// Contexts shared with other threads of this process. share() registers a context under a random id;
// another thread finds it by that id for as long as some thread still holds the context. The registry
// holds no reference of its own: it never keeps a context alive, and never hands out a freed one.
#pragma once

#include <memory>
#include <string>

#include "context.h"

namespace osc {

// The id of `core` in the registry (the same id every time for the same context).
std::string ShareContext(const std::shared_ptr<ContextCore>& core);

// The context registered under `id`, or null once every holder let it go (or the id is unknown).
std::shared_ptr<ContextCore> FindSharedContext(const std::string& id);

}  // namespace osc
