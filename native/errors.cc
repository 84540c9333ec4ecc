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

ErrorQueueGuard::ErrorQueueGuard() { ERR_clear_error(); }
ErrorQueueGuard::~ErrorQueueGuard() { ERR_clear_error(); }

}  // namespace osc
