#include "tcp_connection.h"

#include <cstdlib>
#include <cstring>

#include "addon_data.h"
#include "binding_util.h"
#include "connection_binding.h"
#include "sockaddr.h"
#include "tcp_server.h"

namespace osc {

// A write the socket did not take at once: the engine's ciphertext buffer moves in, uncopied.
struct TcpConnection::WriteReq {
  uv_write_t req;
  TcpConnection* self;
  size_t len;
  Bytes data;
};

TcpConnection::TcpConnection(TcpServer* server)
    : server_(server), engine_(server->context(), server->limits().policy) {}

bool TcpConnection::Start(uv_stream_t* listener) {
  uv_loop_t* loop = listener->loop;
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  open_handles_ = 2;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    handshaking_ = false;  // never counted as pending
    Close();
    return false;
  }
  ServerCounters& c = server_->counters();
  const ServerLimits& l = server_->limits();
  c.accepted++;
  if (l.max_connections != 0 && c.open >= l.max_connections) {
    c.rejected_max_connections++;
    handshaking_ = false;
    Close();
    return false;
  }
  if (l.max_pending_handshakes != 0 && c.pending >= l.max_pending_handshakes) {
    c.rejected_max_pending++;
    handshaking_ = false;
    Close();
    return false;
  }
  counted_ = true;
  RememberAddresses();
  c.open++;
  c.pending++;
  uv_tcp_nodelay(&tcp_, 1);  // handshake flights are single writes; Nagle would only delay them
  if (l.handshake_timeout_ms > 0) uv_timer_start(&timer_, OnHandshakeTimeout, l.handshake_timeout_ms, 0);
  ReadStart();
  return true;
}

void TcpConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<TcpConnection*>(h->data)->server_->read_buffer();
}

void TcpConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpConnection*>(s->data);
  if (self->closing_) return;
  self->server_->Guard([&] {
    if (nread > 0) {
      self->engine_.Receive(buf->base, static_cast<size_t>(nread));
      self->Handle(self->engine_.Advance());
    } else if (nread < 0) {
      self->OnReadEnd(nread);
    }
  });
}

void TcpConnection::Handle(unsigned events) {
  if (events & kCiphertext) Flush();
  if (events & kFatal) {
    if (handshaking_) {
      HandshakeFailed("ERR_OSC_HANDSHAKE", engine_.error());
    } else if (!server_->exiting()) {
      Napi::HandleScope scope(server_->env());
      CallHandle("onerror", {Napi::String::New(server_->env(), engine_.error())});
    }
    engine_.Finish(Ending::kError);
    close_after_shutdown_ = true;
    EndWrites();  // the alert goes out, then the socket closes
    return;
  }
  if (events & kHandshakeDone) Secure();
  if (closing_) return;
  if (events & kPlaintext) {
    Bytes& plain = engine_.plaintext();
    if (server_->exiting()) return plain.Reset();
    Napi::HandleScope scope(server_->env());
    Napi::Buffer<char> chunk = Napi::Buffer<char>::Copy(server_->env(), plain.data(), plain.size());
    plain.Reset();
    if (!CallHandle("onread", {chunk}) && !closing_) ReadStop();
  }
  if (closing_) return;
  if ((events & kPeerClosed) && !server_->exiting()) {
    Napi::HandleScope scope(server_->env());
    CallHandle("onend", {Napi::String::New(server_->env(), "close_notify")});
  }
}

void TcpConnection::Secure() {
  uv_timer_stop(&timer_);
  handshaking_ = false;
  ServerCounters& c = server_->counters();
  c.pending--;
  c.handshakes++;
  if (server_->exiting()) return;
  Napi::Env env = server_->env();
  Napi::HandleScope scope(env);
  const SessionInfo& info = engine_.session();
  if (info.reused) c.resumed++;
  Napi::Object obj = DataOf(env).connection_handle.New({});
  handle_ = ConnectionHandle::Unwrap(obj);
  handle_->Bind(this, info);
  handle_ref_ = Napi::Persistent(obj);
  Napi::Object owner = server_->owner();
  server_->Call(owner, owner.Get("_onconnection"),
                {obj, Napi::String::New(env, remote_address_), Napi::Number::New(env, remote_port_),
                 Napi::String::New(env, local_address_), Napi::Number::New(env, local_port_)});
}

void TcpConnection::HandshakeFailed(const char* code, const std::string& reason) {
  ServerCounters& c = server_->counters();
  if (std::strcmp(code, "ERR_OSC_HANDSHAKE_TIMEOUT") == 0) {
    c.handshake_timeouts++;
  } else {
    c.handshake_failures++;
  }
  if (server_->exiting()) return;
  Napi::Env env = server_->env();
  Napi::HandleScope scope(env);
  Napi::Object owner = server_->owner();
  server_->Call(owner, owner.Get("_ontlsclienterror"),
                {Napi::String::New(env, code), Napi::String::New(env, reason),
                 Napi::String::New(env, remote_address_), Napi::Number::New(env, remote_port_)});
}

void TcpConnection::OnReadEnd(ssize_t status) {
  read_eof_ = true;
  ReadStop();
  if (handshaking_) {
    HandshakeFailed("ERR_OSC_HANDSHAKE", status == UV_EOF ? "client closed the connection during the handshake"
                                                          : std::string("client network error during the handshake: ") +
                                                                uv_err_name(static_cast<int>(status)));
    Close();
    return;
  }
  bool reset = status != UV_EOF;
  if (!engine_.peer_closed() && !engine_.finished()) {
    // No close_notify came: the engine is told how the transport ended and applies the policy. The
    // SSL is gone with it, so nothing more can be sent: close now, and JS learns the ending with the
    // close (one call, not two).
    engine_.Finish(reset ? Ending::kReset : Ending::kEof);
    close_ending_ = reset ? "reset" : "eof";
    Close();
    return;
  }
  // After close_notify, JS ends its side (TLSConnection is not half-open) and OnShutdown closes.
  if (reset || shutdown_done_) Close();
}

void TcpConnection::Flush() {
  Bytes& out = engine_.ciphertext();
  if (out.empty() || closing_) return;
  uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
  // Most writes fit in the socket buffer at once: no request, no callback, no copy.
  int done = queued_ == 0 ? uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1) : UV_EAGAIN;
  if (done == static_cast<int>(out.size())) return out.Reset();
  if (done < 0 && done != UV_EAGAIN) {
    out.Reset();
    return OnReadEnd(done);  // EPIPE / ECONNRESET: the peer is gone
  }
  size_t sent = done > 0 ? static_cast<size_t>(done) : 0;
  auto* w = new WriteReq;
  w->self = this;
  w->data = std::move(out);
  w->len = w->data.size() - sent;
  buf = uv_buf_init(w->data.data() + sent, static_cast<unsigned>(w->len));
  queued_ += w->len;
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, OnWrite) != 0) {
    queued_ -= w->len;
    delete w;
    Close();
  }
}

void TcpConnection::OnWrite(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  TcpConnection* self = w->self;
  self->queued_ -= w->len;
  delete w;
  if (self->closing_) return;
  self->server_->Guard([&] {
    if (status < 0) {
      // EPIPE/ECONNRESET, e.g. a TLS 1.3 client gone before reading its tickets: an ending, not a crash.
      if (!self->read_eof_) self->OnReadEnd(status);
      else self->Close();
      return;
    }
    if (self->need_drain_ && self->queued_ < self->server_->limits().high_water_mark && !self->server_->exiting()) {
      self->need_drain_ = false;
      Napi::HandleScope scope(self->server_->env());
      self->CallHandle("ondrain", {});
    }
  });
}

bool TcpConnection::Write(Napi::Env env, const Napi::Array& chunks) {
  if (closing_) return true;
  for (uint32_t i = 0; i < chunks.Length(); ++i) {
    auto b = chunks.Get(i).As<Napi::Buffer<char>>();
    if (!engine_.Write(b.Data(), b.Length())) {
      Napi::Error err = Napi::Error::New(env, engine_.error());
      err.Set("code", Napi::String::New(env, "ERR_OSC_TLS"));
      throw err;
    }
  }
  Flush();
  if (queued_ >= server_->limits().high_water_mark) {
    need_drain_ = true;
    return false;
  }
  return true;
}

void TcpConnection::Shutdown() {
  if (closing_) return;
  if (engine_.Shutdown() & kCiphertext) Flush();
  EndWrites();
}

void TcpConnection::EndWrites() {
  if (shutdown_started_ || closing_) return;
  shutdown_started_ = true;
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown) != 0) {
    delete req;
    Close();
  }
}

void TcpConnection::OnShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<TcpConnection*>(req->data);
  delete req;
  self->shutdown_done_ = true;
  if (self->closing_) return;
  if (status < 0 || self->read_eof_ || self->close_after_shutdown_) return self->Close();
  // Wait for the peer's FIN, but not forever.
  uint64_t linger = self->server_->limits().handshake_timeout_ms;
  uv_timer_start(&self->timer_, [](uv_timer_t* t) { static_cast<TcpConnection*>(t->data)->Close(); },
                 linger > 0 ? linger : 10000, 0);
}

void TcpConnection::OnHandshakeTimeout(uv_timer_t* t) {
  auto* self = static_cast<TcpConnection*>(t->data);
  if (self->closing_ || !self->handshaking_) return;
  self->server_->Guard([&] { self->HandshakeFailed("ERR_OSC_HANDSHAKE_TIMEOUT", "handshake timed out"); });
  self->Close();
}

void TcpConnection::ReadStart() {
  if (reading_ || read_eof_ || closing_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0) reading_ = true;
}

void TcpConnection::ReadStop() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void TcpConnection::Close() {
  if (closing_) return;
  closing_ = true;
  engine_.Finish(Ending::kLocal);  // no-op when the ending was already reported
  if (counted_) {
    ServerCounters& c = server_->counters();
    c.open--;
    if (handshaking_) c.pending--;
  }
  ReadStop();
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
}

void TcpConnection::OnClosed(uv_handle_t* h) {
  auto* self = static_cast<TcpConnection*>(h->data);
  if (--self->open_handles_ > 0) return;
  if (self->handle_ != nullptr) {
    self->handle_->Unbind();
    self->server_->Guard([&] {
      if (self->server_->exiting()) return;
      Napi::Env env = self->server_->env();
      Napi::HandleScope scope(env);
      self->CallHandle("onclose", {self->close_ending_ ? Napi::String::New(env, self->close_ending_)
                                                       : env.Undefined()});
    });
    self->handle_ = nullptr;
    self->handle_ref_.Reset();
  }
  TcpServer* server = self->server_;
  server->Forget(self);
  delete self;
}

bool TcpConnection::CallHandle(const char* method, std::initializer_list<napi_value> args) {
  if (handle_ == nullptr || server_->exiting()) return true;
  Napi::Env env = server_->env();
  Napi::Object obj = handle_ref_.Value();
  Napi::Value fn = obj.Get(method);
  if (!fn.IsFunction()) return true;
  napi_value r = nullptr;
  if (!server_->Call(obj, fn, args, &r)) return true;
  Napi::Value v(env, r);
  return !(v.IsBoolean() && !v.As<Napi::Boolean>().Value());
}

void TcpConnection::RememberAddresses() {
  SocketName remote = NameOf(&tcp_, true), local = NameOf(&tcp_, false);
  remote_address_ = std::move(remote.address);
  remote_port_ = remote.port;
  local_address_ = std::move(local.address);
  local_port_ = local.port;
}


// ---- ConnectionHandle: the JS face of a TcpConnection ----

Napi::Function ConnectionHandle::Init(Napi::Env env) {
  return DefineClass(env, "ConnectionHandle",
                     {
                         InstanceMethod<&ConnectionHandle::Writev>("writev"),
                         InstanceMethod<&ConnectionHandle::Shutdown>("shutdown"),
                         InstanceMethod<&ConnectionHandle::ReadStart>("readStart"),
                         InstanceMethod<&ConnectionHandle::ReadStop>("readStop"),
                         InstanceMethod<&ConnectionHandle::Destroy>("destroy"),
                         InstanceMethod<&ConnectionHandle::SetShutdown>("setShutdown"),
                         InstanceMethod<&ConnectionHandle::GetShutdown>("getShutdown"),
                         InstanceMethod<&ConnectionHandle::SetNoDelay>("setNoDelay"),
                         InstanceMethod<&ConnectionHandle::SetKeepAlive>("setKeepAlive"),
                         InstanceMethod<&ConnectionHandle::Info>("info"),
                     });
}

ConnectionHandle::ConnectionHandle(const Napi::CallbackInfo& info) : ObjectWrap(info) {}

// writev(buffers[]) -> true, or false when over the high-water mark ('ondrain' follows)
Napi::Value ConnectionHandle::Writev(const Napi::CallbackInfo& info) {
  bool ok = conn_ == nullptr || conn_->Write(info.Env(), info[0].As<Napi::Array>());
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value ConnectionHandle::Shutdown(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->Shutdown();
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::ReadStart(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->ReadStart();
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::ReadStop(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->ReadStop();
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::Destroy(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->Close();
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::SetShutdown(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetShutdownFlags(info[0].ToNumber().Int32Value());
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::GetShutdown(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), conn_ != nullptr ? conn_->shutdown_flags() : 0);
}

Napi::Value ConnectionHandle::SetNoDelay(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetNoDelay(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::SetKeepAlive(const Napi::CallbackInfo& info) {
  if (conn_ != nullptr) conn_->SetKeepAlive(info[0].ToBoolean().Value(), info[1].ToNumber().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value ConnectionHandle::Info(const Napi::CallbackInfo& info) {
  return SessionInfoToJs(info.Env(), session_);
}

}  // namespace osc
