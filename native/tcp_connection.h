// One accepted TCP connection of TcpServer: a uv_tcp_t, its engine and its handshake timer.
// Its JS handle (ConnectionHandle) exists only once the handshake has finished.
#pragma once

#include <napi.h>
#include <uv.h>

#include <string>

#include "engine.h"

namespace osc {

class TcpServer;
class ConnectionHandle;

class TcpConnection {
 public:
  explicit TcpConnection(TcpServer* server);
  // Accepts from the listener and starts the handshake; false if the connection was turned away.
  bool Start(uv_stream_t* listener);
  void Close();  // idempotent; frees itself once libuv has closed both handles

  // Calls from JS (through ConnectionHandle).
  bool Write(Napi::Env env, const Napi::Array& chunks);  // false: over the high-water mark, wait for drain
  void Shutdown();
  void ReadStart();
  void ReadStop();
  void SetShutdownFlags(int flags) { engine_.SetShutdownFlags(flags); }
  int shutdown_flags() const { return engine_.shutdown_flags(); }
  int SetNoDelay(bool on) { return uv_tcp_nodelay(&tcp_, on ? 1 : 0); }
  int SetKeepAlive(bool on, unsigned delay_s) { return uv_tcp_keepalive(&tcp_, on ? 1 : 0, delay_s); }
  void Detach() { handle_ = nullptr; }

 private:
  struct WriteReq;
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnShutdown(uv_shutdown_t* req, int status);
  static void OnHandshakeTimeout(uv_timer_t* t);
  static void OnClosed(uv_handle_t* h);

  void Handle(unsigned events);
  void Flush();
  void OnReadEnd(ssize_t status);
  void HandshakeFailed(const char* code, const std::string& reason);
  void Secure();
  void EndWrites();  // FIN once queued writes went out
  // Calls a method of the JS handle; false when it returned false. Skipped once the env is going away.
  bool CallHandle(const char* method, std::initializer_list<napi_value> args);
  void RememberAddresses();

  TcpServer* server_;
  std::string remote_address_, local_address_;  // read at accept: the peer may be gone by the end
  int remote_port_ = 0, local_port_ = 0;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  Engine engine_;
  ConnectionHandle* handle_ = nullptr;
  Napi::ObjectReference handle_ref_;
  size_t queued_ = 0;
  int open_handles_ = 0;
  bool handshaking_ = true;
  bool closing_ = false;
  bool read_eof_ = false;
  bool shutdown_started_ = false;
  bool shutdown_done_ = false;
  bool close_after_shutdown_ = false;
  bool counted_ = false;
  const char* close_ending_ = nullptr;  // an ending JS has not heard of yet, told with onclose
  bool need_drain_ = false;
  bool reading_ = false;
};

// The JS object handed to lib/server.ts for one secure connection.
class ConnectionHandle : public Napi::ObjectWrap<ConnectionHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ConnectionHandle(const Napi::CallbackInfo& info);
  void Bind(TcpConnection* conn, const SessionInfo& session) {
    conn_ = conn;
    session_ = session;
  }
  void Unbind() { conn_ = nullptr; }

 private:
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value ReadStart(const Napi::CallbackInfo& info);
  Napi::Value ReadStop(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value SetShutdown(const Napi::CallbackInfo& info);
  Napi::Value GetShutdown(const Napi::CallbackInfo& info);
  Napi::Value SetNoDelay(const Napi::CallbackInfo& info);
  Napi::Value SetKeepAlive(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  TcpConnection* conn_ = nullptr;
  SessionInfo session_;  // kept past the connection's close: JS builds its view only when asked
};

}  // namespace osc
