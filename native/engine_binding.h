// EngineWrap: the JS handle of one Engine, driven from JavaScript by the Duplex transport (wrap()).
// Each call does all the work one input allows and returns every output at once: one crossing.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace osc {

// node's authorizationError code of a verification result (X509_V_ERR_ name without the prefix).
const char* VerifyErrorCode(long err);
// { id, reused, protocol, cipher, alpn, servername, peerCertificate, verifyError } for JS.
Napi::Object SessionInfoToJs(Napi::Env env, const SessionInfo& info);
// [ending, clean, code | undefined, reason | undefined] for JS (lib/binding.ts NativeOutcome).
Napi::Array OutcomeToJs(Napi::Env env, const Outcome& outcome);
// The live facts both JS handles offer (the engine of wrap(), a connection of the native server), for
// TLSConnection's getSession(), exportKeyingMaterial(), getFinished(), getPeerFinished(),
// getSharedSigalgs(). `engine` is null once the connection is gone: undefined, [] or an error. The
// arguments (what, ...) start at info[first].
Napi::Value LiveFact(const Napi::CallbackInfo& info, const Engine* engine, size_t first = 0);

// [[id, der, ttlSeconds]...] and [id...] for JS (lib/binding.ts NativeStoreWork): the engine's store work.
Napi::Array StoreWorkToJs(Napi::Env env, Engine& engine);

// The key log lines as Buffers (lib/binding.ts EngineResult[5]).
Napi::Array KeylogToJs(Napi::Env env, const std::vector<std::string>& lines);
// The answers JS gives a suspended handshake, as both JS handles take them: (context | null, error?)
// for SNI, (response | null, error?) for OCSP. Return the engine's events.
unsigned ResolveServernameFromJs(Engine& engine, const Napi::Value& context, const Napi::Value& error);
unsigned ResolveOcspFromJs(Engine& engine, const Napi::Value& response, const Napi::Value& error);

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);  // (context, policy, ask)

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value SetShutdown(const Napi::CallbackInfo& info);
  Napi::Value GetShutdown(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value LookupId(const Napi::CallbackInfo& info);
  Napi::Value ResolveLookup(const Napi::CallbackInfo& info);
  Napi::Value TakeStoreWork(const Napi::CallbackInfo& info);
  Napi::Value Servername(const Napi::CallbackInfo& info);
  Napi::Value ResolveServername(const Napi::CallbackInfo& info);
  Napi::Value OcspRequest(const Napi::CallbackInfo& info);
  Napi::Value ResolveOcsp(const Napi::CallbackInfo& info);
  Napi::Value SetAsk(const Napi::CallbackInfo& info);
  Napi::Value Live(const Napi::CallbackInfo& info);
  Napi::Value SetKeylog(const Napi::CallbackInfo& info);
  // [events, ciphertext | undefined, plaintext | undefined, error | undefined, (resolveLookup's flag),
  //  key log lines | undefined]
  Napi::Value Result(Napi::Env env, unsigned events);

  std::unique_ptr<Engine> engine_;
};

}  // namespace osc
