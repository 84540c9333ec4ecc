// TcpConnectionWrap: the JS face of one TcpConnection, handed to lib/server.ts once the handshake is
// done. Every method is safe in every state: once the connection is gone it does nothing (or answers
// with what it knew).
#pragma once

#include <napi.h>

#include "engine.h"

namespace osc {

class TcpConnection;

class TcpConnectionWrap : public Napi::ObjectWrap<TcpConnectionWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TcpConnectionWrap(const Napi::CallbackInfo& info);
  void Bind(TcpConnection* conn, const SessionInfo& session) {
    conn_ = conn;
    session_ = session;
  }
  void Unbind() { conn_ = nullptr; }

 private:
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value End(const Napi::CallbackInfo& info);
  Napi::Value ReadStart(const Napi::CallbackInfo& info);
  Napi::Value ReadStop(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value SetShutdown(const Napi::CallbackInfo& info);
  Napi::Value GetShutdown(const Napi::CallbackInfo& info);
  Napi::Value SetNoDelay(const Napi::CallbackInfo& info);
  Napi::Value SetKeepAlive(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Live(const Napi::CallbackInfo& info);

  TcpConnection* conn_ = nullptr;
  SessionInfo session_;  // kept past the connection's close: JS builds its view only when asked
};

}  // namespace osc
