#include "errors.h"

#include <openssl/err.h>

namespace osc {

std::string TakeOpenSslError(const char* fallback) {
  unsigned long first = ERR_get_error();
  if (first == 0) return fallback;
  ERR_clear_error();
  const char* reason = ERR_reason_error_string(first);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(first, buf, sizeof buf);
  return buf;
}

namespace {

// ERR_clear_error() walks all 16 slots of the thread's queue (about 800 instructions in OpenSSL 3.0);
// it runs around every engine call, several times per connection, and the queue is nearly always
// empty: look first.
void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

ErrorQueueGuard::ErrorQueueGuard() { ClearErrors(); }
ErrorQueueGuard::~ErrorQueueGuard() { ClearErrors(); }

}  // namespace osc
