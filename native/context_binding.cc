#include "context_binding.h"

#include "addon_data.h"
#include "binding_util.h"
#include "context_registry.h"
#include "errors.h"

namespace osc {

Napi::Function SecureContextWrap::Init(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "SecureContext",
                                  {
                                      InstanceMethod<&SecureContextWrap::SetSessionIdContext>("setSessionIdContext"),
                                      InstanceMethod<&SecureContextWrap::GetSessionIdContext>("getSessionIdContext"),
                                      InstanceMethod<&SecureContextWrap::SetCacheSize>("setCacheSize"),
                                      InstanceMethod<&SecureContextWrap::SetTimeout>("setTimeout"),
                                      InstanceMethod<&SecureContextWrap::Flush>("flush"),
                                      InstanceMethod<&SecureContextWrap::Remove>("remove"),
                                      InstanceMethod<&SecureContextWrap::Stats>("stats"),
                                      InstanceMethod<&SecureContextWrap::SetEventHandler>("setEventHandler"),
                                      InstanceMethod<&SecureContextWrap::Share>("share"),
                                      InstanceMethod<&SecureContextWrap::SetStoreEnabled>("setStoreEnabled"),
                                      InstanceMethod<&SecureContextWrap::ExportSessions>("exportSessions"),
                                      InstanceMethod<&SecureContextWrap::ImportSession>("importSession"),
                                      InstanceMethod<&SecureContextWrap::GetTicketKeys>("getTicketKeys"),
                                      InstanceMethod<&SecureContextWrap::SetTicketKeys>("setTicketKeys"),
                                      InstanceMethod<&SecureContextWrap::AddContext>("addContext"),
                                      InstanceMethod<&SecureContextWrap::SetOcspResponse>("setOcspResponse"),
                                      InstanceMethod<&SecureContextWrap::GetOcspResponse>("getOcspResponse"),
                                      StaticMethod<&SecureContextWrap::FromShared>("fromShared"),
                                  });
  DataOf(env).secure_context = Napi::Persistent(fn);
  return fn;
}

std::shared_ptr<ContextCore> SecureContextWrap::CoreOf(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(DataOf(env).secure_context.Value())) {
    throw Napi::TypeError::New(env, "expected a native SecureContext");
  }
  return Unwrap(value.As<Napi::Object>())->core_;
}

namespace {

// The context fromShared() is constructing a wrap for (this thread, during that call only). Not an
// External: its tracking allocation lives until a GC that a terminating worker never runs.
thread_local const std::shared_ptr<ContextCore>* t_adopting = nullptr;

}  // namespace

// new SecureContext(options); from fromShared(), over an existing context
SecureContextWrap::SecureContextWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {
  Napi::Env env = info.Env();
  if (t_adopting != nullptr) {
    core_ = *t_adopting;
    return;
  }
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "SecureContext: options must be an object");
  try {
    core_ = std::make_shared<ContextCore>();
    Configure(env, info[0].As<Napi::Object>());
  } catch (const TlsError& e) {
    throw ToJsError(env, e);
  }
}

SecureContextWrap::~SecureContextWrap() { StopEvents(); }

// Options arrive validated and normalised by lib/context.ts.
void SecureContextWrap::Configure(Napi::Env, const Napi::Object& o) {
  auto has = [&](const char* k) { return o.Has(k) && !o.Get(k).IsUndefined() && !o.Get(k).IsNull(); };
  auto num = [&](const char* k) { return o.Get(k).As<Napi::Number>().Int64Value(); };
  auto flag = [&](const char* k) { return o.Get(k).ToBoolean().Value(); };
  ContextCore& c = *core_;
  // certs: [pem...], keys: [[pem, passphrase]...]. As node:tls: every certificate, then every key, which
  // OpenSSL files with the certificate of its type (one per type: RSA, ECDSA, Ed25519, ...).
  Napi::Array certs = o.Get("certs").As<Napi::Array>();
  Napi::Array keys = o.Get("keys").As<Napi::Array>();
  for (uint32_t i = 0; i < certs.Length(); ++i) c.UseCertificateChain(BytesOf(certs.Get(i)));
  bool single = certs.Length() == 1 && keys.Length() == 1;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    Napi::Array pair = keys.Get(i).As<Napi::Array>();
    c.UsePrivateKey(BytesOf(pair.Get(0u)), pair.Get(1u).IsString() ? BytesOf(pair.Get(1u)) : "", single);
  }
  if (!single) c.CheckKeyPairs(certs.Length());
  if (o.Has("ticketKeys") && o.Get("ticketKeys").IsBuffer()) c.SetTicketKeys(BytesOf(o.Get("ticketKeys")));
  if (has("ca")) c.AddTrustedCertificates(BytesOf(o.Get("ca")));
  c.SetVerify(flag("requestCert"), flag("rejectUnauthorized"));
  c.SetProtocolRange(static_cast<int>(num("minVersion")), static_cast<int>(num("maxVersion")));
  if (has("ciphers")) c.SetCipherList(BytesOf(o.Get("ciphers")));
  if (has("ciphersuites")) c.SetCipherSuites(BytesOf(o.Get("ciphersuites")));
  if (has("alpn")) c.SetAlpnProtocols(BytesOf(o.Get("alpn")));
  c.SetSessionCacheEnabled(flag("sessionCache"));
  c.SetSessionCacheSize(static_cast<long>(num("sessionCacheSize")));
  c.SetSessionTimeout(static_cast<long>(num("sessionTimeout")));
  c.SetTickets(flag("tickets"));
  c.SetNumTickets(static_cast<size_t>(num("numTickets")));
  // Last, so that the derived default sees the final certificate, verify mode and CA list.
  c.SetSessionIdContext(has("sessionIdContext") ? BytesOf(o.Get("sessionIdContext"))
                                                : c.DeriveSessionIdContext(BytesOf(o.Get("serviceName"))));
}

Napi::Value SecureContextWrap::SetSessionIdContext(const Napi::CallbackInfo& info) {
  try {
    core_->SetSessionIdContext(BytesOf(info[0]));
  } catch (const TlsError& e) {
    throw ToJsError(info.Env(), e);
  }
  return info.Env().Undefined();
}

Napi::Value SecureContextWrap::GetSessionIdContext(const Napi::CallbackInfo& info) {
  return CopyBuffer(info.Env(), core_->session_id_context());
}

Napi::Value SecureContextWrap::SetCacheSize(const Napi::CallbackInfo& info) {
  core_->SetSessionCacheSize(static_cast<long>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value SecureContextWrap::SetTimeout(const Napi::CallbackInfo& info) {
  core_->SetSessionTimeout(static_cast<long>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value SecureContextWrap::Flush(const Napi::CallbackInfo& info) {
  core_->FlushSessions(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value SecureContextWrap::Remove(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), core_->RemoveSession(BytesOf(info[0])));
}

Napi::Value SecureContextWrap::SetStoreEnabled(const Napi::CallbackInfo& info) {
  core_->SetStoreEnabled(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// exportSessions() -> [[id, der]...] of every live cached session, or null when the cache is not indexed.
Napi::Value SecureContextWrap::ExportSessions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_->indexed()) return env.Null();
  auto sessions = core_->ExportSessions();
  Napi::Array out = Napi::Array::New(env, sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, CopyBuffer(env, sessions[i].first));
    pair.Set(1u, CopyBuffer(env, sessions[i].second));
    out.Set(static_cast<uint32_t>(i), pair);
  }
  return out;
}

// importSession(der) -> whether it was added (same session id context, TLS 1.2/1.3, not expired, new).
Napi::Value SecureContextWrap::ImportSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "importSession expects a Buffer");
  auto der = info[0].As<Napi::Buffer<unsigned char>>();
  ErrorQueueGuard guard;
  const unsigned char* p = der.Data();
  SessionPtr sess(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.Length())));
  bool ok = sess && p == der.Data() + der.Length() && core_->ImportSession(sess.get());
  return Napi::Boolean::New(env, ok);
}

Napi::Value SecureContextWrap::GetTicketKeys(const Napi::CallbackInfo& info) {
  return CopyBuffer(info.Env(), core_->GetTicketKeys());
}

// setTicketKeys(Buffer of 48): validated by lib/context.ts.
Napi::Value SecureContextWrap::SetTicketKeys(const Napi::CallbackInfo& info) {
  try {
    core_->SetTicketKeys(BytesOf(info[0]));
  } catch (const TlsError& e) {
    throw ToJsError(info.Env(), e);
  }
  return info.Env().Undefined();
}

// addContext(pattern, context): SNI, the context for host names matching `pattern`.
Napi::Value SecureContextWrap::AddContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "addContext: expected a host name");
  std::shared_ptr<ContextCore> other = CoreOf(info[1]);
  try {
    core_->AddName(info[0].As<Napi::String>().Utf8Value(), std::move(other));
  } catch (const TlsError& e) {
    throw ToJsError(env, e);
  }
  return env.Undefined();
}

// setOcspResponse(der | null): the response stapled when a client asks.
Napi::Value SecureContextWrap::SetOcspResponse(const Napi::CallbackInfo& info) {
  core_->SetOcspResponse(info[0].IsBuffer() ? BytesOf(info[0]) : std::string());
  return info.Env().Undefined();
}

Napi::Value SecureContextWrap::GetOcspResponse(const Napi::CallbackInfo& info) {
  std::string der = core_->OcspResponse();
  return der.empty() ? info.Env().Null() : CopyBuffer(info.Env(), der);
}

// share() -> id: another thread of this process finds the same context with fromShared(id).
Napi::Value SecureContextWrap::Share(const Napi::CallbackInfo& info) {
  try {
    return Napi::String::New(info.Env(), ShareContext(core_));
  } catch (const TlsError& e) {
    throw ToJsError(info.Env(), e);
  }
}

// fromShared(id) -> a SecureContext over the same ContextCore, or null once it was released.
Napi::Value SecureContextWrap::FromShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "fromShared: expected an id string");
  std::shared_ptr<ContextCore> core = FindSharedContext(info[0].As<Napi::String>().Utf8Value());
  if (!core) return env.Null();
  t_adopting = &core;
  Napi::Object wrap;
  try {
    wrap = DataOf(env).secure_context.New({});
  } catch (...) {
    t_adopting = nullptr;
    throw;
  }
  t_adopting = nullptr;
  return wrap;
}

Napi::Value SecureContextWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CacheStats s = core_->Stats();
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* k, long v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  put("number", s.number);
  put("accept", s.accept);
  put("acceptGood", s.accept_good);
  put("acceptRenegotiate", s.accept_renegotiate);
  put("hits", s.hits);
  put("misses", s.misses);
  put("timeouts", s.timeouts);
  put("cacheFull", s.cache_full);
  put("callbackHits", s.cb_hits);
  put("cacheSize", core_->CacheSize());
  put("timeout", core_->Timeout());
  return o;
}

// setEventHandler(fn | null): fn receives batches [[type, idBuffer], ...] (0 = added, 1 = removed).
Napi::Value SecureContextWrap::SetEventHandler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StopEvents();
  if (!info[0].IsFunction()) return env.Undefined();
  // At environment teardown Node finalizes the function on its own, possibly before this object:
  // after that it must be neither called nor released.
  auto finalized = std::make_shared<std::atomic<bool>>(false);
  events_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "osc:session-events", 0, 1,
                                          [finalized](Napi::Env) { finalized->store(true); });
  events_.Unref(env);  // listening for events must not keep the process alive
  events_finalized_ = finalized;
  std::weak_ptr<ContextCore> weak = core_;
  Napi::ThreadSafeFunction tsfn = events_;
  // The sink's id is known only once added; the wake-up reads it through this cell.
  auto sink = std::make_shared<std::atomic<ContextCore::SinkId>>(0);
  sink_ = core_->AddEventSink([tsfn, weak, finalized, sink]() mutable {
    if (finalized->load()) return;
    tsfn.NonBlockingCall([weak, sink](Napi::Env env, Napi::Function fn) {
      std::shared_ptr<ContextCore> core = weak.lock();
      if (!core || fn.IsEmpty()) return;
      std::vector<SessionEvent> events = core->TakeEvents(sink->load());
      if (events.empty()) return;
      // No JS frame above this call: a listener's exception becomes an uncaught exception, as any
      // event listener's would, instead of a C++ exception that terminates the process.
      try {
        Napi::Array batch = Napi::Array::New(env, events.size());
        for (size_t i = 0; i < events.size(); ++i) {
          Napi::Array pair = Napi::Array::New(env, 2);
          pair.Set(0u, Napi::Number::New(env, static_cast<int>(events[i].type)));
          pair.Set(1u, CopyBuffer(env, events[i].id));
          batch.Set(static_cast<uint32_t>(i), pair);
        }
        fn.Call({batch});
      } catch (const Napi::Error& e) {
        if (!e.IsEmpty()) napi_fatal_exception(env, e.Value());
      }
    });
  });
  sink->store(sink_);
  return env.Undefined();
}

void SecureContextWrap::StopEvents() {
  if (!events_finalized_) return;
  core_->RemoveEventSink(sink_);
  if (!events_finalized_->load()) events_.Release();
  events_finalized_.reset();
}

}  // namespace osc
