#include "tcp_server.h"

// Sockets: POSIX headers here; on Windows uv.h (through tcp_server.h) brings Winsock.
#ifndef _WIN32
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "binding_util.h"
#include "context_binding.h"
#include "engine_binding.h"
#include "sockaddr.h"
#include "tcp_connection.h"

namespace osc {

Napi::Function TcpServer::Init(Napi::Env env) {
  return DefineClass(env, "TcpServer",
                     {
                         InstanceMethod<&TcpServer::Listen>("listen"),
                         InstanceMethod<&TcpServer::Address>("address"),
                         InstanceMethod<&TcpServer::Close>("close"),
                         InstanceMethod<&TcpServer::CloseConnections>("closeConnections"),
                         InstanceMethod<&TcpServer::Serve>("serve"),
                         InstanceMethod<&TcpServer::Adopt>("adopt"),
                         InstanceMethod<&TcpServer::ResolveLookup>("resolveLookup"),
                         InstanceMethod<&TcpServer::SetRef>("setRef"),
                         InstanceMethod<&TcpServer::SetKeylog>("setKeylog"),
                         InstanceMethod<&TcpServer::SetAsk>("setAsk"),
                         InstanceMethod<&TcpServer::ResolveServername>("resolveServername"),
                         InstanceMethod<&TcpServer::ResolveOcsp>("resolveOcsp"),
                         InstanceMethod<&TcpServer::ConnWritev>("writev"),
                         InstanceMethod<&TcpServer::ConnEnd>("end"),
                         InstanceMethod<&TcpServer::ConnReadStart>("readStart"),
                         InstanceMethod<&TcpServer::ConnReadStop>("readStop"),
                         InstanceMethod<&TcpServer::ConnDestroy>("destroy"),
                         InstanceMethod<&TcpServer::ConnSetShutdown>("setShutdown"),
                         InstanceMethod<&TcpServer::ConnGetShutdown>("getShutdown"),
                         InstanceMethod<&TcpServer::ConnSetNoDelay>("setNoDelay"),
                         InstanceMethod<&TcpServer::ConnSetKeepAlive>("setKeepAlive"),
                         InstanceMethod<&TcpServer::ConnFacts>("facts"),
                         InstanceMethod<&TcpServer::ConnLive>("live"),
                     });
}

struct TcpServer::Listener {
  uv_tcp_t tcp;
  TcpServer* server;
};

namespace {

Napi::Error UvError(Napi::Env env, int code, const char* syscall) {
  Napi::Error err = Napi::Error::New(env, std::string(syscall) + " " + uv_err_name(code) + ": " + uv_strerror(code));
  err.Set("code", Napi::String::New(env, uv_err_name(code)));
  err.Set("errno", Napi::Number::New(env, code));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

Napi::FunctionReference Callback(const Napi::Object& o, const char* name) {
  Napi::Value fn = o.Get(name);
  if (!fn.IsFunction()) {
    throw Napi::TypeError::New(o.Env(), std::string("TcpServer: callback '") + name + "' is not a function");
  }
  return Napi::Weak(fn.As<Napi::Function>());  // strong only while serving: see RefCallbacks
}

}  // namespace

// new TcpServer(context, { policy, handshakeTimeout, maxConnections, maxPendingHandshakes, highWaterMark },
//               { connection, clientError, close, read, end, drain, closed }, Float64Array(9) counters)
TcpServer::TcpServer(const Napi::CallbackInfo& info) : ObjectWrap(info), read_buf_(new char[kReadBufferSize]) {
  Napi::Env env = info.Env();
  context_ = SecureContextWrap::CoreOf(info[0]);
  if (!info[1].IsObject() || !info[2].IsObject()) throw Napi::TypeError::New(env, "TcpServer: bad arguments");
  Napi::Object o = info[1].As<Napi::Object>();
  // Validated and in range (lib/server.ts); policy is checked here as it selects an enum.
  uint32_t policy = o.Get("policy").ToNumber().Uint32Value();
  if (policy > static_cast<uint32_t>(UncleanPolicy::kDrop)) throw Napi::RangeError::New(env, "bad policy");
  limits_.policy = static_cast<UncleanPolicy>(policy);
  limits_.handshake_timeout_ms = static_cast<uint64_t>(o.Get("handshakeTimeout").ToNumber().Int64Value());
  limits_.max_connections = o.Get("maxConnections").ToNumber().Uint32Value();
  limits_.max_pending_handshakes = o.Get("maxPendingHandshakes").ToNumber().Uint32Value();
  limits_.high_water_mark = static_cast<size_t>(o.Get("highWaterMark").ToNumber().Int64Value());
  Napi::Object cb = info[2].As<Napi::Object>();
  callbacks_.connection = Callback(cb, "connection");
  callbacks_.client_error = Callback(cb, "clientError");
  callbacks_.close = Callback(cb, "close");
  callbacks_.lookup = Callback(cb, "lookup");
  callbacks_.store_work = Callback(cb, "storeWork");
  callbacks_.servername = Callback(cb, "servername");
  callbacks_.ocsp = Callback(cb, "ocsp");
  callbacks_.read = Callback(cb, "read");
  callbacks_.end = Callback(cb, "end");
  callbacks_.drain = Callback(cb, "drain");
  callbacks_.closed = Callback(cb, "closed");
  callbacks_.keylog = Callback(cb, "keylog");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::TypedArray>().ElementLength() != 9) {
    throw Napi::TypeError::New(env, "TcpServer: counters must be a Float64Array of 9");
  }
  Napi::Float64Array counters = info[3].As<Napi::Float64Array>();
  counters_ = reinterpret_cast<ServerCounters*>(counters.Data());
  counters_ref_ = Napi::Persistent(counters);
  if (napi_get_uv_event_loop(env, &loop_) != napi_ok) throw Napi::Error::New(env, "no event loop");
}

TcpServer::~TcpServer() {
  if (cleanup_ != nullptr) napi_remove_async_cleanup_hook(cleanup_);
}

void TcpServer::RefCallbacks(bool strong) {
  for (Napi::FunctionReference* r :
       {&callbacks_.connection, &callbacks_.client_error, &callbacks_.close, &callbacks_.lookup, &callbacks_.store_work,
        &callbacks_.servername, &callbacks_.ocsp, &callbacks_.read, &callbacks_.end, &callbacks_.drain,
        &callbacks_.closed, &callbacks_.keylog}) {
    strong ? r->Ref() : r->Unref();
  }
}

// listen(host, port, backlog, ipv6Only, reusePort). Only when idle: the facade reports the states.
Napi::Value TcpServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kIdle) throw UvError(env, UV_EALREADY, "listen");
  std::string host = info[0].ToString().Utf8Value();
  int port = info[1].ToNumber().Int32Value();
  int backlog = info[2].ToNumber().Int32Value();
  bool ipv6_only = info[3].ToBoolean().Value();
  bool reuse_port = info[4].ToBoolean().Value();

  sockaddr_storage addr;
  bool v6 = host.find(':') != std::string::npos;
  int r = v6 ? uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
             : uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (r != 0) throw UvError(env, r, "listen");
  auto* l = new Listener;
  l->server = this;
  if ((r = uv_tcp_init_ex(loop_, &l->tcp, v6 ? AF_INET6 : AF_INET)) != 0) {
    delete l;
    throw UvError(env, r, "listen");
  }
  l->tcp.data = l;
  Ref();  // the listener's callbacks reach this object until libuv has closed it
  listener_ = l;
  auto fail = [&](int code, const char* syscall) {
    CloseListener();
    return UvError(env, code, syscall);
  };
  if (reuse_port) {
#ifdef SO_REUSEPORT  // Linux, macOS, the BSDs; not Windows
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&l->tcp), &fd) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      throw fail(uv_translate_sys_error(errno), "setsockopt");
    }
#else
    Napi::Error err = fail(UV_ENOTSUP, "setsockopt");
    err.Set("message", "setsockopt ENOTSUP: reusePort needs SO_REUSEPORT, which this platform does not have");
    throw err;
#endif
  }
  if ((r = uv_tcp_bind(&l->tcp, reinterpret_cast<sockaddr*>(&addr), ipv6_only ? UV_TCP_IPV6ONLY : 0)) != 0) {
    throw fail(r, "bind");
  }
  if ((r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), backlog, OnConnection)) != 0) {
    throw fail(r, "listen");
  }
  // Bound to one address: every connection's local address is this one (node:net reads it lazily too).
  local_specific_ = RawNameOf(&l->tcp, false, &local_) && !IsWildcard(local_);
  if (unref_) uv_unref(reinterpret_cast<uv_handle_t*>(&l->tcp));
  StartServing(env);
  return env.Undefined();
}

// setRef(on): as net.Server ref()/unref(): whether the listener keeps the event loop alive (now and for
// later listens). Connections keep it alive on their own, as net.Socket does.
// setKeylog(on): connections accepted from now on collect their key log lines (server 'keylog' listeners).
Napi::Value TcpServer::SetKeylog(const Napi::CallbackInfo& info) {
  keylog_ = info[0].ToBoolean().Value();
  return info.Env().Undefined();
}

Napi::Value TcpServer::SetRef(const Napi::CallbackInfo& info) {
  unref_ = !info[0].ToBoolean().Value();
  if (listener_ != nullptr) {
    auto* h = reinterpret_cast<uv_handle_t*>(&listener_->tcp);
    unref_ ? uv_unref(h) : uv_ref(h);
  }
  return info.Env().Undefined();
}

void TcpServer::StartServing(Napi::Env env) {
  // Serving: hold this object and the callbacks until closed; clean up if the env goes away first.
  state_ = State::kListening;
  Ref();
  RefCallbacks(true);
  if (cleanup_ == nullptr) napi_add_async_cleanup_hook(env, OnCleanup, this, &cleanup_);
}

// serve(): serving without a listener of its own, for sockets handed over with adopt().
Napi::Value TcpServer::Serve(const Napi::CallbackInfo& info) {
  if (state_ != State::kIdle) throw UvError(info.Env(), UV_EALREADY, "serve");
  StartServing(info.Env());
  return info.Env().Undefined();
}

// adopt(fd): serves a TCP socket accepted elsewhere (a cluster worker's net.Server, the caller's own). The
// descriptor is duplicated: the caller closes its own, and must not have read from it.
Napi::Value TcpServer::Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kListening) throw UvError(env, UV_EINVAL, "adopt");
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "adopt: expected a file descriptor");
  int fd = info[0].As<Napi::Number>().Int32Value();
#ifdef _WIN32
  (void)fd;
  throw UvError(env, UV_ENOTSUP, "adopt");
#else
  int own = fd >= 0 ? dup(fd) : -1;
  if (own < 0) throw UvError(env, uv_translate_sys_error(errno), "dup");
  TcpConnection* conn = nullptr;
  try {
    conn = new TcpConnection(this);
  } catch (const std::exception&) {
    ::close(own);
    throw UvError(env, UV_ENOMEM, "adopt");
  }
  if (!Register(conn)) {
    delete conn;
    ::close(own);
    throw UvError(env, UV_EMFILE, "adopt");
  }
  conn->Adopt(loop_, own);
  return env.Undefined();
#endif
}

void TcpServer::OnConnection(uv_stream_t* stream, int status) {
  TcpServer* self = static_cast<Listener*>(stream->data)->server;
  if (status < 0 || self->exiting_ || self->state_ != State::kListening) return;
  TcpConnection* conn = nullptr;
  try {
    conn = new TcpConnection(self);
  } catch (const std::exception&) {
  }
  if (conn != nullptr && !self->Register(conn)) {
    delete conn;
    conn = nullptr;
  }
  if (conn == nullptr) {
    // Out of memory in OpenSSL, or 2^24 connections: accept and drop, so the backlog does not stall.
    auto* t = new uv_tcp_t;
    uv_tcp_init(stream->loop, t);
    uv_accept(stream, reinterpret_cast<uv_stream_t*>(t));
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  self->Guard([&] { conn->Start(stream); });  // a turned-away connection closes itself and is forgotten
}

Napi::Value TcpServer::Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (listener_ == nullptr) return env.Null();
  SocketName name = NameOf(&listener_->tcp, false);
  if (name.address.empty()) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", name.address);
  o.Set("family", name.ipv6 ? "IPv6" : "IPv4");
  o.Set("port", name.port);
  return o;
}

void TcpServer::CloseListener() {
  local_specific_ = false;
  if (listener_ == nullptr) return;
  Listener* l = std::exchange(listener_, nullptr);
  closing_listeners_++;
  uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) {
    auto* l = static_cast<Listener*>(h->data);
    TcpServer* self = l->server;
    delete l;
    self->closing_listeners_--;
    self->Unref();
    self->Guard([&] { self->MaybeDone(); });
  });
}

// close() -> false when not listening (ERR_SERVER_NOT_RUNNING in the facade). Stops accepting; existing
// connections go on, and the close callback runs once all are gone (as node:net).
Napi::Value TcpServer::Close(const Napi::CallbackInfo& info) {
  if (state_ != State::kListening) return Napi::Boolean::New(info.Env(), false);
  state_ = State::kDraining;
  CloseListener();
  MaybeDone();  // serving adopted sockets only, none open: done now (the facade emits 'close' a tick later)
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value TcpServer::CloseConnections(const Napi::CallbackInfo& info) {
  CloseAll();
  return info.Env().Undefined();
}

void TcpServer::CloseAll() {
  // Copy: a closing connection stays listed until libuv has closed it, but keep iteration independent.
  std::vector<TcpConnection*> all;
  all.reserve(live_);
  for (const Slot& s : slots_) {
    if (s.conn != nullptr) all.push_back(s.conn);
  }
  for (TcpConnection* c : all) c->Close(TransportEnd::kLocal);
}

bool TcpServer::LocalAddress(RawAddress* out) const {
  if (!local_specific_) return false;
  *out = local_;
  return true;
}

void TcpServer::ReportClientError(const Outcome& o, const RawAddress& peer) {
  if (exiting()) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  std::string address;
  AppendAddress(peer, &address);
  Call(env.Global(), callbacks_.client_error.Value(),
       {Napi::String::New(env, o.code), Napi::String::New(env, o.reason), Napi::String::New(env, address),
        Napi::Number::New(env, PortOf(peer))});
}

bool TcpServer::Register(TcpConnection* conn) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else if (slots_.size() < kSlotCount) {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    return false;
  }
  slots_[slot].conn = conn;
  live_++;
  conn->set_id(static_cast<double>((uint64_t{slots_[slot].generation} << kSlotBits) | slot));
  return true;
}

TcpConnection* TcpServer::Held(const Napi::Value& id) const {
  double d = 0;
  if (napi_get_value_double(id.Env(), id, &d) != napi_ok || !(d >= 0 && d < 9007199254740992.0)) return nullptr;
  auto v = static_cast<uint64_t>(d);
  if (static_cast<double>(v) != d) return nullptr;
  uint64_t slot = v & (kSlotCount - 1);
  uint64_t generation = v >> kSlotBits;
  if (slot >= slots_.size()) return nullptr;
  const Slot& s = slots_[slot];
  if (s.generation != generation || s.conn == nullptr || !s.conn->held()) return nullptr;
  return s.conn;
}

void TcpServer::Ask(TcpConnection* conn, const Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  Napi::Env env = Env();
  double token = next_lookup_++;
  lookups_[token] = conn;
  std::vector<napi_value> all{Napi::Number::New(env, token)};
  all.insert(all.end(), args.begin(), args.end());
  napi_value r = nullptr;
  napi_make_callback(env, nullptr, env.Global(), fn.Value(), all.size(), all.data(), &r);
  // As Call(): a JS exception becomes uncaught, a stopped environment is noticed.
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exception = nullptr;
    napi_get_and_clear_last_exception(env, &exception);
    if (!CanCallJs()) {
      exiting_ = true;
    } else if (exception != nullptr) {
      napi_fatal_exception(env, exception);
    }
  }
}

void TcpServer::AskStore(TcpConnection* conn, const std::string& id) {
  if (exiting()) return;  // no answer will come: the handshake timeout or the teardown ends it
  Napi::HandleScope scope(Env());
  Ask(conn, callbacks_.lookup, {CopyBuffer(Env(), id)});
}

void TcpServer::AskServername(TcpConnection* conn, const std::string& servername) {
  if (exiting()) return;
  Napi::HandleScope scope(Env());
  Ask(conn, callbacks_.servername, {Napi::String::New(Env(), servername)});
}

void TcpServer::AskOcsp(TcpConnection* conn, const std::string& cert, const std::string& issuer) {
  if (exiting()) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Ask(conn, callbacks_.ocsp, {CopyBuffer(env, cert), issuer.empty() ? env.Null() : CopyBuffer(env, issuer)});
}

TcpConnection* TcpServer::TakeAsker(const Napi::Value& token) {
  auto it = lookups_.find(token.ToNumber().DoubleValue());
  if (it == lookups_.end()) return nullptr;  // the connection is gone
  TcpConnection* conn = it->second;
  lookups_.erase(it);
  return conn;
}

// setAsk(bits): what new connections ask JS (EngineAsk: 1 SNICallback, 2 OCSPRequest).
Napi::Value TcpServer::SetAsk(const Napi::CallbackInfo& info) {
  ask_ = info[0].ToNumber().Uint32Value() & (kAskServername | kAskOcsp);
  return info.Env().Undefined();
}

// resolveServername(token, context | null, error?): SNICallback's answer. Nothing for a connection gone by now.
Napi::Value TcpServer::ResolveServername(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = TakeAsker(info[0])) conn->ResolveServername(info[1], info[2]);
  return info.Env().Undefined();
}

// resolveOcsp(token, response | null, error?): OCSPRequest's answer.
Napi::Value TcpServer::ResolveOcsp(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = TakeAsker(info[0])) conn->ResolveOcsp(info[1], info[2]);
  return info.Env().Undefined();
}

void TcpServer::ForgetLookup(TcpConnection* conn) {
  for (auto it = lookups_.begin(); it != lookups_.end(); ++it) {
    if (it->second == conn) {
      lookups_.erase(it);
      return;
    }
  }
}

// resolveLookup(token, der | null) -> whether the stored session was taken; undefined for a connection
// that is gone by now.
Napi::Value TcpServer::ResolveLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcpConnection* conn = TakeAsker(info[0]);
  if (conn == nullptr) return env.Undefined();  // the connection is gone
  bool accepted = false;
  if (info[1].IsBuffer()) {
    auto der = info[1].As<Napi::Buffer<unsigned char>>();
    accepted = conn->ResolveLookup(der.Data(), der.Length());
  } else {
    accepted = conn->ResolveLookup(nullptr, 0);
  }
  return Napi::Boolean::New(env, accepted);
}

void TcpServer::ReportStoreWork(Engine& engine) {
  if (!engine.has_store_work()) return;
  if (exiting()) {
    std::vector<StoreWrite> w;
    std::vector<std::string> d;
    return engine.TakeStoreWork(&w, &d);
  }
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Array work = StoreWorkToJs(env, engine);
  Call(env.Global(), callbacks_.store_work.Value(), {work.Get(0u), work.Get(1u)});
}

void TcpServer::Forget(TcpConnection* conn) {
  auto slot = static_cast<uint32_t>(static_cast<uint64_t>(conn->id()) & (kSlotCount - 1));
  if (slot < slots_.size() && slots_[slot].conn == conn) {
    Slot& s = slots_[slot];
    s.conn = nullptr;
    live_--;
    // The next connection in this slot gets a new id; a slot out of generations is never used again.
    if (s.generation < kMaxGeneration) {
      s.generation++;
      free_slots_.push_back(slot);
    }
  }
  MaybeDone();
}

// writev(id, buffers[]) -> true, or false when over the high-water mark (the drain callback follows)
Napi::Value TcpServer::ConnWritev(const Napi::CallbackInfo& info) {
  if (!info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "writev expects an array of Buffers");
  TcpConnection* conn = Held(info[0]);
  bool ok = conn == nullptr || conn->Write(info.Env(), info[1].As<Napi::Array>());
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value TcpServer::ConnEnd(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) conn->End();
  return info.Env().Undefined();
}

Napi::Value TcpServer::ConnReadStart(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) conn->ReadStart();
  return info.Env().Undefined();
}

Napi::Value TcpServer::ConnReadStop(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) conn->ReadStop();
  return info.Env().Undefined();
}

// destroy(id) -> [ending, clean, code, reason, facts | undefined], or undefined when the connection had
// already told JS of its close (or the id is not one JS holds). The facts come when JS never asked.
Napi::Value TcpServer::ConnDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcpConnection* conn = Held(info[0]);
  if (conn == nullptr) return env.Undefined();
  Napi::Value facts = conn->facts_taken() ? env.Undefined() : conn->Facts(env);
  Napi::Array out = OutcomeToJs(env, conn->Destroy());
  out.Set(4u, facts);
  return out;
}

Napi::Value TcpServer::ConnSetShutdown(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) conn->SetShutdownFlags(info[1].ToNumber().Int32Value());
  return info.Env().Undefined();
}

Napi::Value TcpServer::ConnGetShutdown(const Napi::CallbackInfo& info) {
  TcpConnection* conn = Held(info[0]);
  return Napi::Number::New(info.Env(), conn != nullptr ? conn->shutdown_flags() : 0);
}

Napi::Value TcpServer::ConnSetNoDelay(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) conn->SetNoDelay(info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value TcpServer::ConnSetKeepAlive(const Napi::CallbackInfo& info) {
  if (TcpConnection* conn = Held(info[0])) {
    conn->SetKeepAlive(info[1].ToBoolean().Value(), info[2].ToNumber().Uint32Value());
  }
  return info.Env().Undefined();
}

// facts(id) -> the packed addresses and session facts (TcpConnection::Facts), or undefined.
Napi::Value TcpServer::ConnFacts(const Napi::CallbackInfo& info) {
  TcpConnection* conn = Held(info[0]);
  return conn != nullptr ? conn->Facts(info.Env()) : info.Env().Undefined();
}

// live(id, what, ...): LiveFact of the connection (as after its close for an id JS no longer holds).
Napi::Value TcpServer::ConnLive(const Napi::CallbackInfo& info) {
  TcpConnection* conn = Held(info[0]);
  return LiveFact(info, conn != nullptr ? &conn->engine() : nullptr, 1);
}

bool TcpServer::exiting() {
  if (!exiting_ && !CanCallJs()) exiting_ = true;
  return exiting_;
}

// A raw N-API call that goes through the "can call into JS" check (NAPI_PREAMBLE), without
// node-addon-api's exception machinery (which itself fails fatally in a terminating environment). The
// cheapest such call: undefined === undefined, no handle scope, no property lookup (this runs several
// times per connection).
bool TcpServer::CanCallJs() {
  napi_env env = Env();
  napi_value undefined = nullptr;
  bool same = false;
  return napi_get_undefined(env, &undefined) == napi_ok &&
         napi_strict_equals(env, undefined, undefined, &same) == napi_ok && same;
}

bool TcpServer::Call(napi_value recv, napi_value fn, size_t argc, const napi_value* argv, napi_value* result) {
  napi_env env = Env();
  napi_value r = nullptr;
  if (napi_make_callback(env, nullptr, recv, fn, argc, argv, &r) == napi_ok) {
    if (result != nullptr) *result = r;
    return true;
  }
  // Raw calls only: node-addon-api would wrap a termination "exception" into an Error object,
  // which cannot be created any more, and abort the process.
  napi_value exception = nullptr;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_get_and_clear_last_exception(env, &exception);
  }
  if (!CanCallJs()) {
    exiting_ = true;
  } else if (exception != nullptr) {
    napi_fatal_exception(env, exception);
  }
  return false;
}

void TcpServer::MaybeDone() {
  // Done once libuv let go of every handle that reaches this object: the environment may free it next.
  if (state_ != State::kDraining || listener_ != nullptr || closing_listeners_ > 0 || live_ != 0) return;
  state_ = State::kIdle;
  if (cleanup_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_);
    cleanup_ = nullptr;
  }
  if (exiting()) return;  // the references go with the environment
  Napi::HandleScope scope(Env());
  Napi::Function close = callbacks_.close.Value();
  RefCallbacks(false);
  Unref();
  Call(Env().Global(), close, {});
}

void TcpServer::OnCleanup(napi_async_cleanup_hook_handle, void* arg) {
  // The environment (process or worker) is going away: close everything, call no JS.
  auto* self = static_cast<TcpServer*>(arg);
  self->exiting_ = true;
  if (self->state_ == State::kListening) self->state_ = State::kDraining;
  self->CloseListener();
  self->CloseAll();
  self->MaybeDone();
}

}  // namespace osc
