// Module entry: registers the layers. The addon calls the OpenSSL linked into the running node
// binary (its symbols are resolved at load time); it links no libssl/libcrypto of its own.
#include <napi.h>
#include <openssl/crypto.h>

#include "addon_data.h"
#include "certgen.h"
#include "context_binding.h"
#include "engine_binding.h"
#include "tcp_server.h"

namespace osc {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("SecureContext", SecureContextWrap::Init(env));
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("TcpServer", TcpServer::Init(env));
  exports.Set("generateCertificate", Napi::Function::New(env, GenerateCertificate, "generateCertificate"));
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  exports.Set("opensslVersionNumber", Napi::Number::New(env, static_cast<double>(OpenSSL_version_num())));
  return exports;
}

}  // namespace osc

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return osc::Init(env, exports); }

NODE_API_MODULE(openssl_session_cache, InitAddon)
