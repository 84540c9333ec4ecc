#include "engine_binding.h"

#include <openssl/x509.h>

#include "binding_util.h"
#include "context_binding.h"

namespace osc {

// The code node:tls gives a verification failure (authorizationError): the X509_V_ERR_ name unprefixed.
const char* VerifyErrorCode(long err) {
  switch (err) {
#define OSC_V_ERR(name)   \
  case X509_V_ERR_##name: \
    return #name;
    OSC_V_ERR(UNABLE_TO_GET_ISSUER_CERT)
    OSC_V_ERR(UNABLE_TO_GET_CRL)
    OSC_V_ERR(UNABLE_TO_DECRYPT_CERT_SIGNATURE)
    OSC_V_ERR(UNABLE_TO_DECRYPT_CRL_SIGNATURE)
    OSC_V_ERR(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
    OSC_V_ERR(CERT_SIGNATURE_FAILURE)
    OSC_V_ERR(CRL_SIGNATURE_FAILURE)
    OSC_V_ERR(CERT_NOT_YET_VALID)
    OSC_V_ERR(CERT_HAS_EXPIRED)
    OSC_V_ERR(CRL_NOT_YET_VALID)
    OSC_V_ERR(CRL_HAS_EXPIRED)
    OSC_V_ERR(ERROR_IN_CERT_NOT_BEFORE_FIELD)
    OSC_V_ERR(ERROR_IN_CERT_NOT_AFTER_FIELD)
    OSC_V_ERR(ERROR_IN_CRL_LAST_UPDATE_FIELD)
    OSC_V_ERR(ERROR_IN_CRL_NEXT_UPDATE_FIELD)
    OSC_V_ERR(OUT_OF_MEM)
    OSC_V_ERR(DEPTH_ZERO_SELF_SIGNED_CERT)
    OSC_V_ERR(SELF_SIGNED_CERT_IN_CHAIN)
    OSC_V_ERR(UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
    OSC_V_ERR(UNABLE_TO_VERIFY_LEAF_SIGNATURE)
    OSC_V_ERR(CERT_CHAIN_TOO_LONG)
    OSC_V_ERR(CERT_REVOKED)
    OSC_V_ERR(INVALID_CA)
    OSC_V_ERR(PATH_LENGTH_EXCEEDED)
    OSC_V_ERR(INVALID_PURPOSE)
    OSC_V_ERR(CERT_UNTRUSTED)
    OSC_V_ERR(CERT_REJECTED)
    OSC_V_ERR(HOSTNAME_MISMATCH)
#undef OSC_V_ERR
    default:
      return "UNSPECIFIED";
  }
}

Napi::Object SessionInfoToJs(Napi::Env env, const SessionInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", CopyBuffer(env, info.id));
  o.Set("reused", Napi::Boolean::New(env, info.reused));
  o.Set("protocol", Napi::String::New(env, info.protocol));
  o.Set("cipher", Napi::String::New(env, info.cipher));
  o.Set("alpn", info.alpn.empty() ? env.Null() : Napi::String::New(env, info.alpn));
  o.Set("servername", info.servername.empty() ? env.Null() : Napi::String::New(env, info.servername));
  o.Set("peerCertificate", info.peer_certificate.empty() ? env.Null() : CopyBuffer(env, info.peer_certificate));
  o.Set("cipherStandardName", Napi::String::New(env, info.cipher_standard_name));
  o.Set("certRequested", Napi::Boolean::New(env, info.cert_requested));
  o.Set("verifyCode",
        info.verify_result == X509_V_OK ? env.Null() : Napi::String::New(env, VerifyErrorCode(info.verify_result)));
  o.Set("verifyError", info.verify_result == X509_V_OK
                           ? env.Null()
                           : Napi::String::New(env, X509_verify_cert_error_string(info.verify_result)));
  return o;
}

Napi::Array OutcomeToJs(Napi::Env env, const Outcome& o) {
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, static_cast<int>(o.ending)));
  out.Set(1u, Napi::Boolean::New(env, o.clean));
  if (!o.code.empty()) {
    out.Set(2u, Napi::String::New(env, o.code));
    out.Set(3u, Napi::String::New(env, o.reason));
  }
  return out;
}

Napi::Array StoreWorkToJs(Napi::Env env, Engine& engine) {
  std::vector<StoreWrite> writes;
  std::vector<std::string> deletes;
  engine.TakeStoreWork(&writes, &deletes);
  Napi::Array w = Napi::Array::New(env, writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    Napi::Array one = Napi::Array::New(env, 3);
    one.Set(0u, CopyBuffer(env, writes[i].id));
    one.Set(1u, CopyBuffer(env, writes[i].der));
    one.Set(2u, Napi::Number::New(env, static_cast<double>(writes[i].ttl_seconds)));
    w.Set(static_cast<uint32_t>(i), one);
  }
  Napi::Array d = Napi::Array::New(env, deletes.size());
  for (size_t i = 0; i < deletes.size(); ++i) d.Set(static_cast<uint32_t>(i), CopyBuffer(env, deletes[i]));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, w);
  out.Set(1u, d);
  return out;
}

Napi::Array KeylogToJs(Napi::Env env, const std::vector<std::string>& lines) {
  Napi::Array out = Napi::Array::New(env, lines.size());
  for (size_t i = 0; i < lines.size(); ++i) out.Set(static_cast<uint32_t>(i), CopyBuffer(env, lines[i]));
  return out;
}

Napi::Function EngineWrap::Init(Napi::Env env) {
  return DefineClass(env, "Engine",
                     {
                         InstanceMethod<&EngineWrap::Feed>("feed"),
                         InstanceMethod<&EngineWrap::Write>("write"),
                         InstanceMethod<&EngineWrap::Shutdown>("shutdown"),
                         InstanceMethod<&EngineWrap::SetShutdown>("setShutdown"),
                         InstanceMethod<&EngineWrap::GetShutdown>("getShutdown"),
                         InstanceMethod<&EngineWrap::Finish>("finish"),
                         InstanceMethod<&EngineWrap::Info>("info"),
                         InstanceMethod<&EngineWrap::LookupId>("lookupId"),
                         InstanceMethod<&EngineWrap::ResolveLookup>("resolveLookup"),
                         InstanceMethod<&EngineWrap::TakeStoreWork>("takeStoreWork"),
                         InstanceMethod<&EngineWrap::Live>("live"),
                         InstanceMethod<&EngineWrap::SetKeylog>("setKeylog"),
                         InstanceMethod<&EngineWrap::Servername>("servername"),
                         InstanceMethod<&EngineWrap::ResolveServername>("resolveServername"),
                         InstanceMethod<&EngineWrap::OcspRequest>("ocspRequest"),
                         InstanceMethod<&EngineWrap::ResolveOcsp>("resolveOcsp"),
                         InstanceMethod<&EngineWrap::SetAsk>("setAsk"),
                     });
}

unsigned ResolveServernameFromJs(Engine& engine, const Napi::Value& context, const Napi::Value& error) {
  std::shared_ptr<ContextCore> core;
  if (!context.IsNull() && !context.IsUndefined()) core = SecureContextWrap::CoreOf(context);
  std::string reason;
  bool failed = error.IsString();
  if (failed) reason = error.As<Napi::String>().Utf8Value();
  return engine.ResolveServername(std::move(core), failed ? &reason : nullptr);
}

unsigned ResolveOcspFromJs(Engine& engine, const Napi::Value& response, const Napi::Value& error) {
  std::string der = response.IsBuffer() ? BytesOf(response) : std::string();
  std::string reason;
  bool failed = error.IsString();
  if (failed) reason = error.As<Napi::String>().Utf8Value();
  return engine.ResolveOcsp(der, failed ? &reason : nullptr);
}

Napi::Value EngineWrap::Servername(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engine_->servername());
}

// resolveServername(context | null, error?) -> EngineResult
Napi::Value EngineWrap::ResolveServername(const Napi::CallbackInfo& info) {
  return Result(info.Env(), ResolveServernameFromJs(*engine_, info[0], info[1]));
}

// ocspRequest() -> [certificate, issuer | null]
Napi::Value EngineWrap::OcspRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, CopyBuffer(env, engine_->ocsp_certificate()));
  out.Set(1u, engine_->ocsp_issuer().empty() ? env.Null() : CopyBuffer(env, engine_->ocsp_issuer()));
  return out;
}

// setAsk(bits): what to ask JS from now on (EngineAsk).
Napi::Value EngineWrap::SetAsk(const Napi::CallbackInfo& info) {
  engine_->set_ask(info[0].ToNumber().Uint32Value() & (kAskServername | kAskOcsp));
  return info.Env().Undefined();
}

// resolveOcsp(response | null, error?) -> EngineResult
Napi::Value EngineWrap::ResolveOcsp(const Napi::CallbackInfo& info) {
  return Result(info.Env(), ResolveOcspFromJs(*engine_, info[0], info[1]));
}

// new Engine(context, policy)
EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  std::shared_ptr<ContextCore> core = SecureContextWrap::CoreOf(info[0]);
  uint32_t code = info[1].ToNumber().Uint32Value();
  if (code > static_cast<uint32_t>(UncleanPolicy::kDrop)) throw Napi::RangeError::New(info.Env(), "bad policy");
  auto policy = static_cast<UncleanPolicy>(code);
  unsigned ask = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() & (kAskServername | kAskOcsp) : 0;
  try {
    engine_ = std::make_unique<Engine>(std::move(core), policy, ask);
  } catch (const TlsError& e) {
    throw ToJsError(info.Env(), e);
  }
}

Napi::Value EngineWrap::Result(Napi::Env env, unsigned events) {
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
  if (engine_->has_keylog()) out.Set(5u, KeylogToJs(env, engine_->TakeKeylog()));
  return out;
}

Napi::Value EngineWrap::Feed(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "feed expects a Buffer");
  auto buf = info[0].As<Napi::Buffer<char>>();
  return Result(info.Env(), engine_->Feed(buf.Data(), buf.Length()));
}

// write(buffers[]): encrypts a batch; ciphertext comes back in one buffer.
Napi::Value EngineWrap::Write(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "write expects an array of Buffers");
  Napi::Array list = info[0].As<Napi::Array>();
  unsigned events = 0;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(info.Env(), "write expects an array of Buffers");
    auto buf = v.As<Napi::Buffer<char>>();
    if (!engine_->Write(buf.Data(), buf.Length())) {
      events |= kFatal;
      break;
    }
  }
  if (engine_->PendingCiphertext() > 0) events |= kCiphertext;
  return Result(info.Env(), events);
}

Napi::Value EngineWrap::Shutdown(const Napi::CallbackInfo& info) { return Result(info.Env(), engine_->Shutdown()); }

Napi::Value EngineWrap::SetShutdown(const Napi::CallbackInfo& info) {
  engine_->SetShutdownFlags(static_cast<int>(info[0].ToNumber().Int32Value()));
  return info.Env().Undefined();
}

Napi::Value EngineWrap::GetShutdown(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_->shutdown_flags());
}

// finish(how, sysCode?) -> outcome: the transport ended (TransportEnd), or asks for the verdict.
Napi::Value EngineWrap::Finish(const Napi::CallbackInfo& info) {
  uint32_t how = info[0].ToNumber().Uint32Value();
  if (how > static_cast<uint32_t>(TransportEnd::kLocal)) throw Napi::RangeError::New(info.Env(), "bad ending");
  std::string code = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
  const Outcome& o = engine_->Finish(static_cast<TransportEnd>(how), code.empty() ? nullptr : code.c_str());
  return OutcomeToJs(info.Env(), o);
}

Napi::Value EngineWrap::Info(const Napi::CallbackInfo& info) { return SessionInfoToJs(info.Env(), engine_->session()); }

}  // namespace osc

namespace osc {

Napi::Value EngineWrap::LookupId(const Napi::CallbackInfo& info) {
  return CopyBuffer(info.Env(), engine_->lookup_id());
}

// resolveLookup(der | null) -> EngineResult with [4] = whether the stored session was taken.
Napi::Value EngineWrap::ResolveLookup(const Napi::CallbackInfo& info) {
  bool accepted = false;
  unsigned events = 0;
  if (info[0].IsBuffer()) {
    auto der = info[0].As<Napi::Buffer<unsigned char>>();
    events = engine_->ResolveLookup(der.Data(), der.Length(), &accepted);
  } else {
    events = engine_->ResolveLookup(nullptr, 0, &accepted);
  }
  Napi::Array out = Result(info.Env(), events).As<Napi::Array>();
  out.Set(4u, Napi::Boolean::New(info.Env(), accepted));
  return out;
}

Napi::Value EngineWrap::TakeStoreWork(const Napi::CallbackInfo& info) { return StoreWorkToJs(info.Env(), *engine_); }

Napi::Value EngineWrap::Live(const Napi::CallbackInfo& info) { return LiveFact(info, engine_.get()); }

// setKeylog(on): collect the key log lines, returned in [5] of the results.
Napi::Value EngineWrap::SetKeylog(const Napi::CallbackInfo& info) {
  engine_->SetKeylog(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// live(what, ...): 'session' | 'certificate' -> Buffer | undefined; 'keying', length, label, context? -> Buffer (throws
// when unavailable); 'finished' | 'peerFinished' -> Buffer | undefined; 'sigalgs' -> string[].
Napi::Value LiveFact(const Napi::CallbackInfo& info, const Engine* engine, size_t first) {
  Napi::Env env = info.Env();
  std::string what = info[first + 0].IsString() ? info[first + 0].As<Napi::String>().Utf8Value() : std::string();
  auto buffer = [&](const std::string& s) -> Napi::Value { return s.empty() ? env.Undefined() : CopyBuffer(env, s); };
  if (what == "session") return buffer(engine != nullptr ? engine->SessionDer() : std::string());
  if (what == "certificate") return buffer(engine != nullptr ? engine->CertificateDer() : std::string());
  if (what == "finished" || what == "peerFinished") {
    return buffer(engine != nullptr ? engine->Finished(what == "peerFinished") : std::string());
  }
  if (what == "sigalgs") {
    std::vector<std::string> names;
    if (engine != nullptr) names = engine->SharedSignatureAlgorithms();
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
    return out;
  }
  if (what == "keying") {
    uint32_t length = info[first + 1].ToNumber().Uint32Value();
    std::string label = BytesOf(info[first + 2]);
    std::string context;
    bool has_context = info[first + 3].IsBuffer();
    if (has_context) context = BytesOf(info[first + 3]);
    std::string out;
    if (engine == nullptr || !engine->ExportKeyingMaterial(length, label, has_context ? &context : nullptr, &out)) {
      Napi::Error err = Napi::Error::New(env, "no keying material: the connection is not established");
      err.Set("code", Napi::String::New(env, "ERR_OSC_CLOSED"));
      throw err;
    }
    return CopyBuffer(env, out);
  }
  throw Napi::TypeError::New(env, "live: unknown fact");
}

}  // namespace osc
