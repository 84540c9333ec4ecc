// OpenSSL's error queue turned into one message, so every failure reaches JS with OpenSSL's reason.
#pragma once

#include <string>

namespace osc {

// The reason of the oldest queued error (e.g. "key values mismatch"), or `fallback` when the queue is
// empty. Drains the whole queue so nothing leaks into the next call.
std::string TakeOpenSslError(const char* fallback);

// Clears the thread's error queue on entry and on exit of a scope that calls into OpenSSL.
class ErrorQueueGuard {
 public:
  ErrorQueueGuard();
  ~ErrorQueueGuard();
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
};

}  // namespace osc
