#include "tcp_connection_binding.h"

#include "engine_binding.h"
#include "tcp_connection.h"

namespace osc {

Napi::Function TcpConnectionWrap::Init(Napi::Env env) {
  return DefineClass(env, "TcpConnection",
                     {
                         InstanceMethod<&TcpConnectionWrap::Writev>("writev"),
                         InstanceMethod<&TcpConnectionWrap::End>("end"),
                         InstanceMethod<&TcpConnectionWrap::ReadStart>("readStart"),
                         InstanceMethod<&TcpConnectionWrap::ReadStop>("readStop"),
                         InstanceMethod<&TcpConnectionWrap::Destroy>("destroy"),
                         InstanceMethod<&TcpConnectionWrap::SetShutdown>("setShutdown"),
                         InstanceMethod<&TcpConnectionWrap::GetShutdown>("getShutdown"),
                         InstanceMethod<&TcpConnectionWrap::SetNoDelay>("setNoDelay"),
                         InstanceMethod<&TcpConnectionWrap::SetKeepAlive>("setKeepAlive"),
                         InstanceMethod<&TcpConnectionWrap::Info>("info"),
                         InstanceMethod<&TcpConnectionWrap::Live>("live"),
                     });
}

TcpConnectionWrap::TcpConnectionWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {}

// writev(buffers[]) -> true, or false when over the high-water mark (the drain callback follows)
Napi::Value TcpConnectionWrap::Writev(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "writev expects an array of Buffers");
  bool ok = conn_ == nullptr || conn_->Write(info.Env(), info[0].As<Napi::Array>());
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value TcpConnectionWrap::End(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->End();
  return info.Env().Undefined();
}

Napi::Value TcpConnectionWrap::ReadStart(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->ReadStart();
  return info.Env().Undefined();
}

Napi::Value TcpConnectionWrap::ReadStop(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->ReadStop();
  return info.Env().Undefined();
}

// destroy() -> the outcome, or undefined when the connection had already told JS of its close.
Napi::Value TcpConnectionWrap::Destroy(const Napi::CallbackInfo& info) {
  if (conn_ == nullptr) return info.Env().Undefined();
  TcpConnection* conn = conn_;
  conn_ = nullptr;
  return OutcomeToJs(info.Env(), conn->Destroy());
}

Napi::Value TcpConnectionWrap::SetShutdown(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetShutdownFlags(info[0].ToNumber().Int32Value());
  return info.Env().Undefined();
}

Napi::Value TcpConnectionWrap::GetShutdown(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), conn_ != nullptr ? conn_->shutdown_flags() : 0);
}

Napi::Value TcpConnectionWrap::SetNoDelay(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetNoDelay(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value TcpConnectionWrap::SetKeepAlive(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetKeepAlive(info[0].ToBoolean().Value(), info[1].ToNumber().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value TcpConnectionWrap::Info(const Napi::CallbackInfo& info) { return SessionInfoToJs(info.Env(), session_); }

Napi::Value TcpConnectionWrap::Live(const Napi::CallbackInfo& info) {
  return LiveFact(info, conn_ != nullptr ? &conn_->engine() : nullptr);
}

}  // namespace osc
