#include "connection_binding.h"

#include <openssl/x509.h>

#include "binding_util.h"
#include "context_binding.h"

namespace osc {

Napi::Object SessionInfoToJs(Napi::Env env, const SessionInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", CopyBuffer(env, info.id));
  o.Set("reused", Napi::Boolean::New(env, info.reused));
  o.Set("protocol", Napi::String::New(env, info.protocol));
  o.Set("cipher", Napi::String::New(env, info.cipher));
  o.Set("alpn", info.alpn.empty() ? env.Null() : Napi::String::New(env, info.alpn));
  o.Set("servername", info.servername.empty() ? env.Null() : Napi::String::New(env, info.servername));
  o.Set("peerCertificate", info.peer_certificate.empty() ? env.Null() : CopyBuffer(env, info.peer_certificate));
  o.Set("verifyError", info.verify_result == X509_V_OK
                           ? env.Null()
                           : Napi::String::New(env, X509_verify_cert_error_string(info.verify_result)));
  return o;
}

Napi::Function ConnectionWrap::Init(Napi::Env env) {
  return DefineClass(env, "Connection",
                     {
                         InstanceMethod<&ConnectionWrap::Feed>("feed"),
                         InstanceMethod<&ConnectionWrap::Write>("write"),
                         InstanceMethod<&ConnectionWrap::Shutdown>("shutdown"),
                         InstanceMethod<&ConnectionWrap::SetShutdown>("setShutdown"),
                         InstanceMethod<&ConnectionWrap::GetShutdown>("getShutdown"),
                         InstanceMethod<&ConnectionWrap::Finish>("finish"),
                         InstanceMethod<&ConnectionWrap::Info>("info"),
                     });
}

// new Connection(context, policy)
ConnectionWrap::ConnectionWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  std::shared_ptr<ContextCore> core = SecureContextWrap::CoreOf(info[0]);
  auto policy = static_cast<UncleanPolicy>(info[1].ToNumber().Uint32Value());
  try {
    engine_ = std::make_unique<Engine>(std::move(core), policy);
  } catch (const TlsError& e) {
    throw ToJsError(info.Env(), e);
  }
}

Napi::Value ConnectionWrap::Result(Napi::Env env, unsigned events) {
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, events));
  Bytes& wire = engine_->ciphertext();
  if (!wire.empty()) {
    out.Set(1u, Napi::Buffer<char>::Copy(env, wire.data(), wire.size()));
    wire.Reset();
  }
  Bytes& plain = engine_->plaintext();
  if (!plain.empty()) {
    out.Set(2u, Napi::Buffer<char>::Copy(env, plain.data(), plain.size()));
    plain.Reset();
  }
  if (events & kFatal) out.Set(3u, Napi::String::New(env, engine_->error()));
  return out;
}

Napi::Value ConnectionWrap::Feed(const Napi::CallbackInfo& info) {
  auto buf = info[0].As<Napi::Buffer<char>>();
  engine_->Receive(buf.Data(), buf.Length());
  return Result(info.Env(), engine_->Advance());
}

// write(buffers[]): encrypts a batch; ciphertext comes back in one buffer.
Napi::Value ConnectionWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Array list = info[0].As<Napi::Array>();
  unsigned events = 0;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    auto buf = list.Get(i).As<Napi::Buffer<char>>();
    if (!engine_->Write(buf.Data(), buf.Length())) {
      events |= kFatal;
      break;
    }
  }
  if (engine_->PendingCiphertext() > 0) events |= kCiphertext;
  return Result(info.Env(), events);
}

Napi::Value ConnectionWrap::Shutdown(const Napi::CallbackInfo& info) {
  return Result(info.Env(), engine_->Shutdown());
}

Napi::Value ConnectionWrap::SetShutdown(const Napi::CallbackInfo& info) {
  engine_->SetShutdownFlags(static_cast<int>(info[0].ToNumber().Int32Value()));
  return info.Env().Undefined();
}

Napi::Value ConnectionWrap::GetShutdown(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->shutdown_flags());
}

Napi::Value ConnectionWrap::Finish(const Napi::CallbackInfo& info) {
  engine_->Finish(static_cast<Ending>(info[0].ToNumber().Uint32Value()));
  return info.Env().Undefined();
}

Napi::Value ConnectionWrap::Info(const Napi::CallbackInfo& info) {
  return SessionInfoToJs(info.Env(), engine_->session());
}

}  // namespace osc
