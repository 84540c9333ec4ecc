// One accepted TCP connection of TcpServer: a uv_tcp_t, its engine and its timer. JS hears of it only
// once the handshake has finished, by its id (a slot of the server's table: no JS object of its own).
#pragma once

#include <napi.h>
#include <uv.h>

#include <string>

#include "engine.h"
#include "sockaddr.h"

namespace osc {

class TcpServer;

class TcpConnection {
 public:
  // The life of a connection. Every change goes through Enter(), the only place that moves the
  // server's counters, so each moves exactly once per connection.
  //
  //   kAccepting ──► kHandshaking ──► kOpen ──► kEnding ──► kLingering
  //       │               │             │          │            │
  //       └───────────────┴─────────────┴──────────┴────────────┴──► kClosing (uv_close) ──► freed
  //                       └──────────────────────► kEnding  (a fatal alert to flush)
  enum class State : uint8_t {
    kAccepting,    // not yet accepted, or turned away: never counted
    kHandshaking,  // counted in `pending`; the timer bounds it
    kOpen,         // secure; JS knows its id
    kEnding,       // our FIN follows the queued writes (uv_shutdown in flight)
    kLingering,    // FIN sent; waiting for the peer's, bounded by the timer
    kClosing,      // uv_close issued on both handles; OnClosed frees
  };

  explicit TcpConnection(TcpServer* server);
  // The id JS knows this connection by (TcpServer's table: slot and generation).
  double id() const { return id_; }
  void set_id(double id) { id_ = id; }
  // JS holds the connection: it was handed over and neither destroyed nor told of the close.
  bool held() const { return held_; }
  // Accepts from the listener and starts the handshake, or turns the connection away.
  void Start(uv_stream_t* listener);
  // The same for a socket accepted elsewhere; the connection owns `fd` from here on.
  void Adopt(uv_loop_t* loop, int fd);
  // Tears the connection down now (idempotent): the engine decides the outcome from `how`, and JS
  // hears it once libuv has closed the socket.
  void Close(TransportEnd how, const char* sys_code = nullptr);

  // Calls from JS, by id through TcpServer; each is a no-op once the connection is past its use.
  bool Write(Napi::Env env, const Napi::Array& chunks);  // false: over the high-water mark, wait for drain
  void End();                                            // close_notify, then FIN after queued writes
  void ReadStart();
  void ReadStop();
  void SetShutdownFlags(int flags) { engine_.SetShutdownFlags(flags); }
  int shutdown_flags() const { return engine_.shutdown_flags(); }
  const Engine& engine() const { return engine_; }
  int SetNoDelay(bool on);
  int SetKeepAlive(bool on, unsigned delay_s);
  // JS destroyed its side: it is told nothing more, and hears the outcome from this call.
  const Outcome& Destroy();
  // The addresses and session facts, packed for JS (lib/server.ts parseFacts); JS asks once, and
  // gets them with the close (closed callback, destroy()) if it never asked.
  Napi::Value Facts(Napi::Env env);
  bool facts_taken() const { return facts_taken_; }
  // The store answered the lookup the handshake waits for (null: no session): true when it was taken.
  bool ResolveLookup(const unsigned char* der, size_t len);
  // JS's answers to SNICallback and OCSPRequest (see engine_binding.h).
  void ResolveServername(const Napi::Value& context, const Napi::Value& error);
  void ResolveOcsp(const Napi::Value& response, const Napi::Value& error);

 private:
  struct WriteReq;
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnShutdown(uv_shutdown_t* req, int status);
  static void OnTimer(uv_timer_t* t);
  static void OnClosed(uv_handle_t* h);

  void Enter(State next);
  void InitHandles(uv_loop_t* loop);
  void Admit(bool from_listener);  // from_listener: accepted from the server's own listener
  void ReadNow();                  // the first read, at once: the ClientHello has usually arrived by the accept
  bool Handshaking() const { return state_ == State::kHandshaking; }
  bool Gone() const { return state_ == State::kClosing; }
  void Handle(unsigned events);
  void Secure(bool with_data);  // with_data: the plaintext so far goes with the connection call
  void Flush();
  void OnPeerEof(ssize_t status);
  void EndWrites();
  void Linger();
  // Calls a connection callback with the id first; false when it returned false.
  bool CallJs(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  void RememberAddresses(bool from_listener);

  TcpServer* server_;
  double id_ = 0;
  RawAddress remote_, local_;  // read at accept (the peer may be gone by the end), formatted when asked
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  Engine engine_;
  State state_ = State::kAccepting;
  int open_handles_ = 0;
  size_t queued_ = 0;         // bytes handed to uv_write and not yet written
  bool peer_eof_ = false;     // the peer's FIN came (after its close_notify)
  bool reading_ = false;      // flow control: uv_read_start is on
  bool need_drain_ = false;   // flow control: JS waits for 'drain'
  bool held_ = false;         // JS holds the connection (see held())
  bool facts_taken_ = false;  // JS has the facts (see Facts())
};

}  // namespace osc
