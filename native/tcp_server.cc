#include "tcp_server.h"

#include <sys/socket.h>

#include <cstring>

#include "addon_data.h"
#include "binding_util.h"
#include "context_binding.h"
#include "sockaddr.h"
#include "tcp_connection.h"

namespace osc {

Napi::Function TcpServer::Init(Napi::Env env) {
  DataOf(env).connection_handle = Napi::Persistent(ConnectionHandle::Init(env));
  return DefineClass(env, "TcpServer",
                     {
                         InstanceMethod<&TcpServer::Listen>("listen"),
                         InstanceMethod<&TcpServer::Address>("address"),
                         InstanceMethod<&TcpServer::Close>("close"),
                         InstanceMethod<&TcpServer::CloseConnections>("closeConnections"),
                         InstanceMethod<&TcpServer::Stats>("stats"),
                     });
}

namespace {

Napi::Error UvError(Napi::Env env, int code, const char* syscall) {
  Napi::Error err = Napi::Error::New(env, std::string(syscall) + " " + uv_err_name(code) + ": " + uv_strerror(code));
  err.Set("code", Napi::String::New(env, uv_err_name(code)));
  err.Set("errno", Napi::Number::New(env, code));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

}  // namespace

// new TcpServer(context, { policy, handshakeTimeout, maxConnections, maxPendingHandshakes, highWaterMark }, owner)
TcpServer::TcpServer(const Napi::CallbackInfo& info) : ObjectWrap(info), read_buf_(new char[kReadBufferSize]) {
  Napi::Env env = info.Env();
  context_ = SecureContextWrap::CoreOf(info[0]);
  Napi::Object o = info[1].As<Napi::Object>();
  limits_.policy = static_cast<UncleanPolicy>(o.Get("policy").ToNumber().Uint32Value());
  limits_.handshake_timeout_ms = static_cast<uint64_t>(o.Get("handshakeTimeout").ToNumber().Int64Value());
  limits_.max_connections = o.Get("maxConnections").ToNumber().Uint32Value();
  limits_.max_pending_handshakes = o.Get("maxPendingHandshakes").ToNumber().Uint32Value();
  limits_.high_water_mark = static_cast<size_t>(o.Get("highWaterMark").ToNumber().Int64Value());
  // Weak until listening: the owner's closures reference the facade that holds this object.
  owner_ = Napi::Weak(info[2].As<Napi::Object>());
  if (napi_get_uv_event_loop(env, &loop_) != napi_ok) throw Napi::Error::New(env, "no event loop");
}

TcpServer::~TcpServer() {
  if (cleanup_ != nullptr) napi_remove_async_cleanup_hook(cleanup_);
}

// listen(host, port, backlog, ipv6Only, reusePort)
Napi::Value TcpServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (listener_open_) throw UvError(env, UV_EALREADY, "listen");
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
  if ((r = uv_tcp_init_ex(loop_, &listener_, v6 ? AF_INET6 : AF_INET)) != 0) throw UvError(env, r, "listen");
  listener_.data = this;
  listener_open_ = true;
  auto fail = [&](int code, const char* syscall) {
    // libuv closes the listener later, and it lives inside this object: hold it until then.
    Ref();
    unref_after_close_ = true;
    CloseListener();
    return UvError(env, code, syscall);
  };
  if (reuse_port) {
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&listener_), &fd) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      throw fail(uv_translate_sys_error(errno), "setsockopt");
    }
  }
  if ((r = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), ipv6_only ? UV_TCP_IPV6ONLY : 0)) != 0) {
    throw fail(r, "bind");
  }
  if ((r = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), backlog, OnConnection)) != 0) {
    throw fail(r, "listen");
  }
  // Hold the JS objects while the listener or connections live; clean up if the env goes away.
  Ref();
  owner_.Ref();
  if (cleanup_ == nullptr) napi_add_async_cleanup_hook(env, OnCleanup, this, &cleanup_);
  return env.Undefined();
}

void TcpServer::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<TcpServer*>(listener->data);
  if (status < 0 || self->exiting_) return;
  TcpConnection* conn = nullptr;
  try {
    conn = new TcpConnection(self);
  } catch (const TlsError&) {
    // Out of memory in OpenSSL: accept and drop, so the backlog does not stall.
    auto* t = new uv_tcp_t;
    uv_tcp_init(listener->loop, t);
    uv_accept(listener, reinterpret_cast<uv_stream_t*>(t));
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  self->connections_.push_back(conn);
  conn->Start(listener);  // a turned-away connection closes itself and is forgotten
}

Napi::Value TcpServer::Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!listener_open_) return env.Null();
  SocketName name = NameOf(&listener_, false);
  if (name.address.empty()) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", name.address);
  o.Set("family", name.ipv6 ? "IPv6" : "IPv4");
  o.Set("port", name.port);
  return o;
}

void TcpServer::CloseListener() {
  if (!listener_open_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
    auto* self = static_cast<TcpServer*>(h->data);
    self->listener_open_ = false;
    if (self->unref_after_close_) {
      self->unref_after_close_ = false;
      self->Unref();
      return;  // a failed listen: nothing was accepted, no close event is owed
    }
    self->Guard([&] { self->MaybeDone(); });
  });
}

// close(): stop accepting; existing connections go on ("_onclose" once all are gone, as node:net).
Napi::Value TcpServer::Close(const Napi::CallbackInfo& info) {
  if (listener_open_) {
    CloseListener();
  } else {
    MaybeDone();
  }
  return info.Env().Undefined();
}

Napi::Value TcpServer::CloseConnections(const Napi::CallbackInfo& info) {
  // Copy: closing does not erase synchronously, but keep iteration independent of it anyway.
  std::list<TcpConnection*> all = connections_;
  for (TcpConnection* c : all) c->Close();
  return info.Env().Undefined();
}

void TcpServer::Forget(TcpConnection* conn) {
  connections_.remove(conn);
  MaybeDone();
}

bool TcpServer::exiting() {
  if (!exiting_ && !CanCallJs()) exiting_ = true;
  return exiting_;
}

// A raw N-API call that goes through the "can call into JS" check, without node-addon-api's
// exception machinery (which itself fails fatally in a terminating environment).
bool TcpServer::CanCallJs() {
  napi_env env = Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value owner = nullptr;
  napi_value fn = nullptr;
  bool ok = napi_get_reference_value(env, static_cast<napi_ref>(owner_), &owner) == napi_ok && owner != nullptr &&
            napi_get_named_property(env, owner, "_onclose", &fn) == napi_ok;
  napi_close_handle_scope(env, scope);
  return ok;
}

bool TcpServer::Call(napi_value recv, napi_value fn, std::initializer_list<napi_value> args, napi_value* result) {
  napi_env env = Env();
  napi_value r = nullptr;
  if (napi_make_callback(env, nullptr, recv, fn, args.size(), args.begin(), &r) == napi_ok) {
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
  if (listener_open_ || !connections_.empty()) return;
  if (exiting()) {
    if (cleanup_ != nullptr) {
      napi_remove_async_cleanup_hook(cleanup_);
      cleanup_ = nullptr;
    }
    return;
  }
  if (cleanup_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_);
    cleanup_ = nullptr;
    Napi::HandleScope scope(Env());
    Napi::Object owner = owner_.Value();
    Unref();
    owner_.Unref();
    Call(owner, owner.Get("_onclose"), {});
  }
}

void TcpServer::OnCleanup(napi_async_cleanup_hook_handle, void* arg) {
  // The environment (process or worker) is going away: close everything, call no JS.
  auto* self = static_cast<TcpServer*>(arg);
  self->exiting_ = true;
  self->CloseListener();
  std::list<TcpConnection*> all = self->connections_;
  for (TcpConnection* c : all) c->Close();
  self->MaybeDone();
}

Napi::Value TcpServer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("accepted", counters_.accepted);
  o.Set("handshakes", counters_.handshakes);
  o.Set("resumed", counters_.resumed);
  o.Set("handshakeFailures", counters_.handshake_failures);
  o.Set("handshakeTimeouts", counters_.handshake_timeouts);
  o.Set("rejectedMaxConnections", counters_.rejected_max_connections);
  o.Set("rejectedMaxPendingHandshakes", counters_.rejected_max_pending);
  o.Set("connections", counters_.open);
  o.Set("pendingHandshakes", counters_.pending);
  return o;
}

}  // namespace osc
