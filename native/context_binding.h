// SecureContext: the JS handle of one ContextCore (one SSL_CTX and its session cache).
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "context.h"

namespace osc {

class SecureContextWrap : public Napi::ObjectWrap<SecureContextWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static std::shared_ptr<ContextCore> CoreOf(const Napi::Value& value);  // throws a JS TypeError
  explicit SecureContextWrap(const Napi::CallbackInfo& info);
  ~SecureContextWrap() override;

 private:
  void Configure(Napi::Env env, const Napi::Object& o);
  Napi::Value SetSessionIdContext(const Napi::CallbackInfo& info);
  Napi::Value GetSessionIdContext(const Napi::CallbackInfo& info);
  Napi::Value SetCacheSize(const Napi::CallbackInfo& info);
  Napi::Value SetTimeout(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value SetEventHandler(const Napi::CallbackInfo& info);
  Napi::Value Share(const Napi::CallbackInfo& info);
  Napi::Value SetStoreEnabled(const Napi::CallbackInfo& info);
  Napi::Value ExportSessions(const Napi::CallbackInfo& info);
  Napi::Value ImportSession(const Napi::CallbackInfo& info);
  Napi::Value GetTicketKeys(const Napi::CallbackInfo& info);
  Napi::Value SetTicketKeys(const Napi::CallbackInfo& info);
  Napi::Value AddContext(const Napi::CallbackInfo& info);
  Napi::Value SetOcspResponse(const Napi::CallbackInfo& info);
  Napi::Value GetOcspResponse(const Napi::CallbackInfo& info);
  static Napi::Value FromShared(const Napi::CallbackInfo& info);
  void StopEvents();

  std::shared_ptr<ContextCore> core_;
  Napi::ThreadSafeFunction events_;                      // bound while JS listens for session events
  std::shared_ptr<std::atomic<bool>> events_finalized_;  // set while bound; true once Node finalized it
  ContextCore::SinkId sink_ = 0;
};

}  // namespace osc
