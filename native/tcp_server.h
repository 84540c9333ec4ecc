// The native TCP transport: a libuv listener on Node's own event loop. Accept, the TLS handshake,
// the session-cache lookup, record encryption and shutdown run in C++; JavaScript is called only for
// a connection whose handshake finished, for plaintext (one batch per socket read) and for close.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine.h"
#include "sockaddr.h"

namespace osc {

class TcpConnection;

struct ServerLimits {
  UncleanPolicy policy = UncleanPolicy::kKeep;
  uint64_t handshake_timeout_ms = 10000;
  uint32_t max_connections = 0;         // 0: unlimited
  uint32_t max_pending_handshakes = 0;  // 0: unlimited
  size_t high_water_mark = 64 * 1024;   // queued ciphertext bytes before write() says "wait for drain"
};

// The JS functions native calls, given once at construction (as udx-native does), so that a missing or
// renamed one fails there and then, not silently at the first connection.
struct ServerCallbacks {
  // (id, firstPlaintext | undefined, keylogLines | undefined) -> true when JS took the connection
  Napi::FunctionReference connection;
  Napi::FunctionReference client_error;  // (code, reason, remoteAddress, remotePort)
  Napi::FunctionReference close;         // (): stopped listening and every connection is gone
  Napi::FunctionReference lookup;        // (token, sessionId): ask the store; answer with resolveLookup(token, der)
  Napi::FunctionReference store_work;    // (writes, deletes): sessions for the store (lib/binding.ts NativeStoreWork)
  Napi::FunctionReference servername;    // (token, servername): SNICallback; answer with resolveServername
  Napi::FunctionReference ocsp;          // (token, certificate, issuer | null): OCSPRequest; answer with resolveOcsp
  // Per connection, each with the connection's id first (no JS object per connection):
  Napi::FunctionReference read;    // (id, plaintext) -> false to pause reading
  Napi::FunctionReference end;     // (id): close_notify received
  Napi::FunctionReference drain;   // (id): queued ciphertext fell below the high-water mark
  Napi::FunctionReference closed;  // (id, outcome, facts | undefined): the socket is closed; the id is void now
  Napi::FunctionReference keylog;  // (id, lines): key log lines after the handshake (those before go with `connection`)
};

// The server's counters, laid out as the Float64Array that JS reads them from without a call
// (lib/server.ts COUNTER_NAMES): in a SharedArrayBuffer for a threaded server, so that the main thread
// sums every thread's figures.
struct ServerCounters {
  double accepted, handshakes, resumed, handshake_failures, handshake_timeouts, rejected_max_connections,
      rejected_max_pending, open, pending;
};
static_assert(sizeof(ServerCounters) == 9 * sizeof(double), "one Float64Array slot per counter");

class TcpServer : public Napi::ObjectWrap<TcpServer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TcpServer(const Napi::CallbackInfo& info);  // (context, limits, callbacks, counters)
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
  bool Call(napi_value recv, napi_value fn, std::initializer_list<napi_value> args, napi_value* result = nullptr) {
    return Call(recv, fn, args.size(), args.begin(), result);
  }
  bool Call(napi_value recv, napi_value fn, size_t argc, const napi_value* argv, napi_value* result);
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
  ServerCounters& counters() { return *counters_; }
  const ServerLimits& limits() const { return limits_; }
  const ServerCallbacks& callbacks() const { return callbacks_; }
  const std::shared_ptr<ContextCore>& context() const { return context_; }
  bool keylog() const { return keylog_; }  // new connections collect key log lines
  uv_buf_t read_buffer() { return uv_buf_init(read_buf_.get(), kReadBufferSize); }
  // A handshake failed or timed out (the client_error callback; no JS while exiting).
  void ReportClientError(const Outcome& outcome, const RawAddress& peer);
  void Forget(TcpConnection* conn);  // a connection finished closing: its id is void from now on
  // The local address of an accepted connection when known without a system call (a listener bound to
  // one address): false when the connection must ask the kernel.
  bool LocalAddress(RawAddress* out) const;
  // The store: a handshake waits for the answer to a lookup; sessions to write or delete.
  void AskStore(TcpConnection* conn, const std::string& id);
  void AskServername(TcpConnection* conn, const std::string& servername);
  void AskOcsp(TcpConnection* conn, const std::string& cert, const std::string& issuer);
  unsigned ask() const { return ask_; }  // EngineAsk bits for new connections
  void ForgetLookup(TcpConnection* conn);
  void ReportStoreWork(Engine& engine);

 private:
  // kIdle ──listen()/serve()──► kListening ──close()──► kDraining ──(listener closed, no connections)──► kIdle
  // (serve(): accepting only what adopt() hands over, without a listener of its own)
  enum class State : uint8_t { kIdle, kListening, kDraining };
  struct Listener;  // one per listen(): libuv may still hold a closed one while the next is opened
  static constexpr unsigned kReadBufferSize = 64 * 1024;
  static void OnConnection(uv_stream_t* listener, int status);
  static void OnCleanup(napi_async_cleanup_hook_handle handle, void* arg);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value CloseConnections(const Napi::CallbackInfo& info);
  Napi::Value Serve(const Napi::CallbackInfo& info);
  Napi::Value Adopt(const Napi::CallbackInfo& info);
  Napi::Value ResolveLookup(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value SetKeylog(const Napi::CallbackInfo& info);
  Napi::Value SetAsk(const Napi::CallbackInfo& info);
  Napi::Value ResolveServername(const Napi::CallbackInfo& info);
  Napi::Value ResolveOcsp(const Napi::CallbackInfo& info);
  // The per-connection calls, by id (info[0]); an unknown or stale id does nothing.
  Napi::Value ConnWritev(const Napi::CallbackInfo& info);
  Napi::Value ConnEnd(const Napi::CallbackInfo& info);
  Napi::Value ConnReadStart(const Napi::CallbackInfo& info);
  Napi::Value ConnReadStop(const Napi::CallbackInfo& info);
  Napi::Value ConnDestroy(const Napi::CallbackInfo& info);
  Napi::Value ConnSetShutdown(const Napi::CallbackInfo& info);
  Napi::Value ConnGetShutdown(const Napi::CallbackInfo& info);
  Napi::Value ConnSetNoDelay(const Napi::CallbackInfo& info);
  Napi::Value ConnSetKeepAlive(const Napi::CallbackInfo& info);
  Napi::Value ConnFacts(const Napi::CallbackInfo& info);
  Napi::Value ConnLive(const Napi::CallbackInfo& info);
  // The connection JS holds under `id`, or null (not a live id: never seen, closed, destroyed, stale).
  TcpConnection* Held(const Napi::Value& id) const;
  // Enters a new connection in the table (it gets its id); false when the table is full.
  bool Register(TcpConnection* conn);
  // Registers a suspended handshake under a new token and calls `fn` with (token, args...).
  void Ask(TcpConnection* conn, const Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  TcpConnection* TakeAsker(const Napi::Value& token);
  void StartServing(Napi::Env env);
  void CloseListener();
  void CloseAll();
  void RefCallbacks(bool strong);
  bool CanCallJs();
  void MaybeDone();

  uv_loop_t* loop_ = nullptr;
  State state_ = State::kIdle;
  Listener* listener_ = nullptr;  // while accepting
  int closing_listeners_ = 0;     // closed, until libuv's close callback
  bool unref_ = false;            // server.unref(): the listener does not keep the loop alive
  bool exiting_ = false;
  bool keylog_ = false;  // someone listens for 'keylog'
  unsigned ask_ = 0;
  std::shared_ptr<ContextCore> context_;
  ServerLimits limits_;
  ServerCounters* counters_ = nullptr;  // in counters_ref_'s memory
  Napi::Reference<Napi::Float64Array> counters_ref_;
  ServerCallbacks callbacks_;
  // The connections, by slot: an id is slot + generation × 2^24, so a stale id never reaches the
  // slot's next connection. A slot whose generation ran out is retired.
  static constexpr uint32_t kSlotBits = 24;
  static constexpr uint64_t kSlotCount = uint64_t{1} << kSlotBits;
  static constexpr uint32_t kMaxGeneration = (1u << 29) - 1;  // ids stay below 2^53
  struct Slot {
    TcpConnection* conn = nullptr;
    uint32_t generation = 0;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  size_t live_ = 0;     // occupied slots
  RawAddress local_{};  // the listener's address when bound to one (local_specific_)
  bool local_specific_ = false;
  std::unordered_map<double, TcpConnection*> lookups_;  // by token, while a handshake waits for JS (store, SNI, OCSP)
  double next_lookup_ = 1;
  std::unique_ptr<char[]> read_buf_;  // one per server: every read is consumed before the next
  napi_async_cleanup_hook_handle cleanup_ = nullptr;
};

}  // namespace osc
