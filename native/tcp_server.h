// The native TCP transport: a libuv listener on Node's own event loop. Accept, the TLS handshake,
// the session-cache lookup, record encryption and shutdown run in C++; JavaScript is called only for
// a connection whose handshake finished, for plaintext (one batch per socket read) and for close.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "engine.h"

namespace osc {

class TcpConnection;

struct ServerLimits {
  UncleanPolicy policy = UncleanPolicy::kKeep;
  uint64_t handshake_timeout_ms = 10000;
  uint32_t max_connections = 0;       // 0: unlimited
  uint32_t max_pending_handshakes = 0;  // 0: unlimited
  size_t high_water_mark = 64 * 1024;   // queued ciphertext bytes before write() says "wait for drain"
};

struct ServerCounters {
  double accepted = 0, handshakes = 0, resumed = 0, handshake_failures = 0, handshake_timeouts = 0,
         rejected_max_connections = 0, rejected_max_pending = 0;
  uint32_t open = 0, pending = 0;
};

class TcpServer : public Napi::ObjectWrap<TcpServer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TcpServer(const Napi::CallbackInfo& info);  // (context, limits, owner)
  ~TcpServer() override;

  // Used by TcpConnection.
  Napi::Env env() const { return Env(); }
  // True once the environment is going away and JS must not be called. Besides the cleanup hook,
  // this notices an environment that can no longer run JS (worker.terminate(), process exit) while
  // libuv still delivers callbacks before the hook: every N-API call fails then, and
  // node-addon-api turns such failures into exceptions or fatal errors.
  bool exiting();
  // Calls fn on recv through napi_make_callback. False when it did not complete: a JS exception
  // (reported as uncaught) or an environment that stopped running JS (then exiting() turns true).
  bool Call(napi_value recv, napi_value fn, std::initializer_list<napi_value> args, napi_value* result = nullptr);
  // Runs the JS-touching part of a libuv callback. There is no JS frame to catch a C++ exception
  // there: a failure becomes an uncaught JS exception, or is dropped once the environment is going
  // away (a terminating worker fails any N-API call at any moment), instead of terminating the process.
  template <typename F>
  void Guard(F&& f) {
    try {
      f();
    } catch (const Napi::Error& e) {
      if (!CanCallJs()) {
        exiting_ = true;
      } else if (!e.IsEmpty()) {
        napi_fatal_exception(Env(), e.Value());
      }
    }
  }
  ServerCounters& counters() { return counters_; }
  const ServerLimits& limits() const { return limits_; }
  const std::shared_ptr<ContextCore>& context() const { return context_; }
  Napi::Object owner() { return owner_.Value(); }
  uv_buf_t read_buffer() { return uv_buf_init(read_buf_.get(), kReadBufferSize); }
  void Forget(TcpConnection* conn);  // a connection finished closing

 private:
  static constexpr unsigned kReadBufferSize = 64 * 1024;
  static void OnConnection(uv_stream_t* listener, int status);
  static void OnCleanup(napi_async_cleanup_hook_handle handle, void* arg);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value CloseConnections(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void CloseListener();
  bool CanCallJs();
  void MaybeDone();

  uv_loop_t* loop_ = nullptr;
  uv_tcp_t listener_;
  bool listener_open_ = false;
  bool unref_after_close_ = false;  // a failed listen holds the object until libuv lets go
  bool exiting_ = false;
  std::shared_ptr<ContextCore> context_;
  ServerLimits limits_;
  ServerCounters counters_;
  Napi::ObjectReference owner_;
  std::list<TcpConnection*> connections_;
  std::unique_ptr<char[]> read_buf_;  // one per server: every read is consumed before the next
  napi_async_cleanup_hook_handle cleanup_ = nullptr;
};

}  // namespace osc
