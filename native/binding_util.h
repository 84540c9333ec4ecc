// Small helpers shared by the N-API bindings.
#pragma once

#include <napi.h>

#include <string>

#include "context.h"

namespace osc {

// Throws a JS Error carrying the stable `code` of a TlsError (and OpenSSL's reason as message).
inline Napi::Error ToJsError(Napi::Env env, const TlsError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  return err;
}

inline std::string BytesOf(const Napi::Value& v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return v.ToString().Utf8Value();
}

inline Napi::Buffer<char> CopyBuffer(Napi::Env env, const std::string& s) {
  return Napi::Buffer<char>::Copy(env, s.data(), s.size());
}

// Bytes as a one-byte JS string (latin1: byte n is char code n): one V8 allocation, no backing store,
// no finalizer. JS takes binary parts back with Buffer.from(s, 'latin1').
inline Napi::Value Latin1String(Napi::Env env, const char* data, size_t len) {
  napi_value v = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, data, len, &v), Napi::Value());
  return Napi::Value(env, v);
}

}  // namespace osc
