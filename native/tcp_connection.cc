#include "tcp_connection.h"

#ifndef _WIN32
#include <unistd.h>
#endif

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "binding_util.h"
#include "engine_binding.h"
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
    : server_(server), engine_(server->context(), server->limits().policy, server->ask()) {
  if (server->keylog()) engine_.SetKeylog(true);
}

namespace {

using State = TcpConnection::State;

// The legal moves of the diagram in tcp_connection.h: always forward, and into the secure states only
// through the handshake.
bool Legal(State from, State to) {
  if (to <= from) return false;
  if (from == State::kAccepting) return to == State::kHandshaking || to == State::kClosing;
  if (from == State::kHandshaking) return to != State::kLingering;
  return true;
}

}  // namespace

void TcpConnection::Enter(State next) {
  State prev = state_;
  if (!Legal(prev, next)) return;  // unreachable by construction; never a second count
  state_ = next;
  ServerCounters& c = server_->counters();
  if (next == State::kHandshaking) {
    c.open++;
    c.pending++;
    return;
  }
  if (prev == State::kHandshaking) {
    c.pending--;
    if (next == State::kOpen) {
      c.handshakes++;
      if (engine_.session().reused) c.resumed++;
    } else {
      // The engine finished before the move, so its outcome says why.
      const Outcome& o = engine_.outcome();
      bool timeout = o.code == "ERR_OSC_HANDSHAKE_TIMEOUT";
      (timeout ? c.handshake_timeouts : c.handshake_failures)++;
      // A connection the server itself closed (server shutdown, closeAllConnections) is no client's error.
      if (o.ending != Ending::kLocal) server_->ReportClientError(o, remote_);
    }
  }
  if (next == State::kClosing && prev != State::kAccepting) c.open--;
}

void TcpConnection::InitHandles(uv_loop_t* loop) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  open_handles_ = 2;
}

void TcpConnection::Start(uv_stream_t* listener) {
  InitHandles(listener->loop);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) return Close(TransportEnd::kLocal);
  Admit(true);
}

void TcpConnection::Adopt(uv_loop_t* loop, int fd) {
  InitHandles(loop);
  if (uv_tcp_open(&tcp_, static_cast<uv_os_sock_t>(fd)) != 0) {
#ifndef _WIN32
    ::close(fd);
#endif
    return Close(TransportEnd::kLocal);
  }
  Admit(false);
}

// Counts the accepted socket, applies the limits, and starts the handshake.
void TcpConnection::Admit(bool from_listener) {
  ServerCounters& c = server_->counters();
  const ServerLimits& l = server_->limits();
  c.accepted++;
  if (l.max_connections != 0 && c.open >= l.max_connections) {
    c.rejected_max_connections++;
    return Close(TransportEnd::kLocal);
  }
  if (l.max_pending_handshakes != 0 && c.pending >= l.max_pending_handshakes) {
    c.rejected_max_pending++;
    return Close(TransportEnd::kLocal);
  }
  RememberAddresses(from_listener);
  Enter(State::kHandshaking);
  uv_tcp_nodelay(&tcp_, 1);  // handshake flights are single writes; Nagle would only delay them
  if (l.handshake_timeout_ms > 0) uv_timer_start(&timer_, OnTimer, l.handshake_timeout_ms, 0);
  ReadStart();
  // Not for adopt(): that is a call from JavaScript, and a first read can call back into it (an SNI or
  // store lookup, a client error) before adopt() returns.
  if (from_listener) ReadNow();
}

// By the time a connection is accepted its ClientHello has usually arrived: read it now, as a server
// that calls SSL_accept right after accept() does, instead of one event-loop round later (an epoll
// wake-up and a pass through node's loop phases per connection). What libuv would have reported, the
// same callback gets; nothing there yet is the usual wait.
void TcpConnection::ReadNow() {
#ifndef _WIN32
  uv_os_fd_t fd = -1;
  if (!reading_ || Gone() || uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return;
  uv_buf_t buf = server_->read_buffer();
  ssize_t n = 0;
  do {
    n = ::read(fd, buf.base, buf.len);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  OnRead(reinterpret_cast<uv_stream_t*>(&tcp_), n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno), &buf);
#endif
}

void TcpConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<TcpConnection*>(h->data)->server_->read_buffer();
}

void TcpConnection::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpConnection*>(s->data);
  if (self->Gone()) return;
  self->server_->Guard([&] {
    if (nread > 0) {
      self->Handle(self->engine_.Feed(buf->base, static_cast<size_t>(nread)));
    } else if (nread < 0) {
      self->OnPeerEof(nread);
    }
  });
}

void TcpConnection::Handle(unsigned events) {
  if (events & kStoreWork) server_->ReportStoreWork(engine_);
  if (events & kLookup) server_->AskStore(this, engine_.lookup_id());
  if (events & kServername) server_->AskServername(this, engine_.servername());
  if (events & kOcsp) server_->AskOcsp(this, engine_.ocsp_certificate(), engine_.ocsp_issuer());
  bool secured = (events & kHandshakeDone) != 0;
  if (secured) Enter(State::kOpen);
  if (events & kFatal) {
    engine_.Finish(TransportEnd::kError);  // a TLS failure: the engine's own error decides
    Flush();                               // the alert, if any
    EndWrites();                           // then FIN, then close
    return;
  }
  // The client's Finished gets its answer before JS runs.
  if (events & kCiphertext) Flush();
  if (Gone()) return;
  if (secured) {
    // The plaintext that came with the client's Finished (say, the first request) rides along with
    // the connection call: one JS call instead of two.
    bool with_data = (events & kPlaintext) != 0 && !server_->exiting();
    Secure(with_data);
    if (with_data) events &= ~static_cast<unsigned>(kPlaintext);
  }
  if (Gone() || !held_ || server_->exiting()) {
    engine_.plaintext().Reset(0);
    return;
  }
  if (events & kPlaintext) {
    Napi::Env env = server_->env();
    Napi::HandleScope scope(env);
    Bytes& plain = engine_.plaintext();
    Napi::Buffer<char> chunk = Napi::Buffer<char>::Copy(env, plain.data(), plain.size());
    plain.Reset(0);  // an idle connection keeps no plaintext buffer; the next read allocates one
    if (!CallJs(server_->callbacks().read, {chunk})) ReadStop();
  }
  if ((events & kPeerClosed) && !Gone()) CallJs(server_->callbacks().end, {});
  // Lines of the handshake went with `connection`; later ones (rare: a key update) come here.
  if (engine_.has_keylog() && !Gone() && held_) {
    Napi::Env env = server_->env();
    Napi::HandleScope scope(env);
    CallJs(server_->callbacks().keylog, {KeylogToJs(env, engine_.TakeKeylog())});
  }
}

void TcpConnection::Secure(bool with_data) {
  uv_timer_stop(&timer_);
  if (server_->exiting()) return;
  Napi::Env env = server_->env();
  Napi::HandleScope scope(env);
  napi_value first = env.Undefined();
  if (with_data) {
    Bytes& plain = engine_.plaintext();
    first = Napi::Buffer<char>::Copy(env, plain.data(), plain.size());
    plain.Reset(0);
  }
  Napi::Value keylog = engine_.has_keylog() ? Napi::Value(KeylogToJs(env, engine_.TakeKeylog())) : env.Undefined();
  held_ = true;  // JS may call in already, from the connection callback
  napi_value taken = nullptr;
  bool called = server_->Call(env.Global(), server_->callbacks().connection.Value(),
                              {Napi::Number::New(env, id_), first, keylog}, &taken);
  if (Gone() || !held_) return;  // JS destroyed it already
  bool yes = false;
  if (!called || napi_get_value_bool(env, taken, &yes) != napi_ok || !yes) {
    // The listener threw, or the facade did not take the connection: nobody can use it.
    held_ = false;
    return Close(TransportEnd::kLocal);
  }
}

void TcpConnection::OnPeerEof(ssize_t status) {
  ReadStop();
  if (status != UV_EOF) return Close(TransportEnd::kError, uv_err_name(static_cast<int>(status)));
  peer_eof_ = true;
  // Our FIN is on its way: OnShutdown closes once what we queued went out. After it, nothing is left.
  if (state_ == State::kEnding) return;
  if (state_ == State::kLingering) return Close(TransportEnd::kEof);
  // A FIN without close_notify ends the connection now (the engine applies the unclean-close policy).
  // After close_notify it is the peer's half-close: JS ends its side (TLSConnection is not half-open),
  // and the connection closes once our FIN is out.
  if (!engine_.peer_closed()) Close(TransportEnd::kEof);
}

void TcpConnection::Flush() {
  Bytes& out = engine_.ciphertext();
  if (out.empty() || Gone()) return;
  uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
  // Most writes fit in the socket buffer at once: no request, no callback, no copy.
  int done = queued_ == 0 ? uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1) : UV_EAGAIN;
  if (done == static_cast<int>(out.size())) return out.Reset();
  if (done < 0 && done != UV_EAGAIN) {
    out.Reset();
    return Close(TransportEnd::kError, uv_err_name(done));  // EPIPE / ECONNRESET: the peer is gone
  }
  size_t sent = done > 0 ? static_cast<size_t>(done) : 0;
  auto* w = new WriteReq;
  w->self = this;
  w->data = std::move(out);
  w->len = w->data.size() - sent;
  buf = uv_buf_init(w->data.data() + sent, static_cast<unsigned>(w->len));
  queued_ += w->len;
  int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, OnWrite);
  if (r != 0) {
    queued_ -= w->len;
    delete w;
    Close(TransportEnd::kError, uv_err_name(r));
  }
}

void TcpConnection::OnWrite(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  TcpConnection* self = w->self;
  self->queued_ -= w->len;
  delete w;
  if (self->Gone()) return;
  self->server_->Guard([&] {
    // EPIPE/ECONNRESET, e.g. a TLS 1.3 client gone before reading its tickets: an ending, not a crash.
    if (status < 0) return self->Close(TransportEnd::kError, uv_err_name(status));
    if (self->need_drain_ && self->queued_ < self->server_->limits().high_water_mark) {
      self->need_drain_ = false;
      self->CallJs(self->server_->callbacks().drain, {});
    }
  });
}

bool TcpConnection::Write(Napi::Env env, const Napi::Array& chunks) {
  if (state_ != State::kOpen) return true;  // ending or gone: the stream reports its own state
  for (uint32_t i = 0; i < chunks.Length(); ++i) {
    Napi::Value v = chunks.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "writev expects Buffers");
    auto b = v.As<Napi::Buffer<char>>();
    if (!engine_.Write(b.Data(), b.Length())) {
      Napi::Error err = Napi::Error::New(env, engine_.error());
      err.Set("code", Napi::String::New(env, "ERR_OSC_TLS"));
      throw err;
    }
  }
  Flush();
  if (!Gone() && queued_ >= server_->limits().high_water_mark) {
    need_drain_ = true;
    return false;
  }
  return true;
}

void TcpConnection::End() {
  if (state_ != State::kOpen) return;
  if (engine_.Shutdown() & kCiphertext) Flush();
  EndWrites();
}

void TcpConnection::EndWrites() {
  if (state_ != State::kHandshaking && state_ != State::kOpen) return;
  Enter(State::kEnding);
  auto* req = new uv_shutdown_t;
  req->data = this;
  int r = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown);
  if (r != 0) {
    delete req;
    Close(TransportEnd::kError, uv_err_name(r));
  }
}

void TcpConnection::OnShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<TcpConnection*>(req->data);
  delete req;
  if (self->Gone()) return;
  self->server_->Guard([&] {
    if (status < 0) return self->Close(TransportEnd::kError, uv_err_name(status));
    if (self->peer_eof_ || self->engine_.finished()) return self->Close(TransportEnd::kEof);
    self->Linger();
  });
}

void TcpConnection::Linger() {
  // Our FIN is out: wait for the peer's, but not forever.
  Enter(State::kLingering);
  uint64_t linger = server_->limits().handshake_timeout_ms;
  uv_timer_start(&timer_, OnTimer, linger > 0 ? linger : 10000, 0);
}

void TcpConnection::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<TcpConnection*>(t->data);
  if (self->Gone()) return;
  self->server_->Guard([&] { self->Close(self->Handshaking() ? TransportEnd::kTimeout : TransportEnd::kLocal); });
}

void TcpConnection::ReadStart() {
  if (reading_ || peer_eof_ || Gone()) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0) reading_ = true;
}

void TcpConnection::ReadStop() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

int TcpConnection::SetNoDelay(bool on) { return Gone() ? UV_EBADF : uv_tcp_nodelay(&tcp_, on ? 1 : 0); }

int TcpConnection::SetKeepAlive(bool on, unsigned delay_s) {
  return Gone() ? UV_EBADF : uv_tcp_keepalive(&tcp_, on ? 1 : 0, delay_s);
}

void TcpConnection::Close(TransportEnd how, const char* sys_code) {
  if (Gone()) return;
  engine_.Finish(how, sys_code);  // decides the outcome unless something already did
  if (engine_.waiting()) server_->ForgetLookup(this);
  Enter(State::kClosing);
  ReadStop();
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
}

bool TcpConnection::ResolveLookup(const unsigned char* der, size_t len) {
  if (Gone()) return false;
  bool accepted = false;
  unsigned events = engine_.ResolveLookup(der, len, &accepted);
  server_->Guard([&] { Handle(events); });
  return accepted;
}

void TcpConnection::ResolveServername(const Napi::Value& context, const Napi::Value& error) {
  if (Gone()) return;
  unsigned events = ResolveServernameFromJs(engine_, context, error);  // may throw a TypeError to JS
  server_->Guard([&] { Handle(events); });
}

void TcpConnection::ResolveOcsp(const Napi::Value& response, const Napi::Value& error) {
  if (Gone()) return;
  unsigned events = ResolveOcspFromJs(engine_, response, error);
  server_->Guard([&] { Handle(events); });
}

const Outcome& TcpConnection::Destroy() {
  held_ = false;
  Close(TransportEnd::kLocal);
  return engine_.outcome();
}

void TcpConnection::OnClosed(uv_handle_t* h) {
  auto* self = static_cast<TcpConnection*>(h->data);
  if (--self->open_handles_ > 0) return;
  // What the close did to the cache (drop policy, a fatal error) goes to the store too.
  self->server_->Guard([&] { self->server_->ReportStoreWork(self->engine_); });
  if (self->held_) {
    self->server_->Guard([&] {
      if (self->server_->exiting()) return;
      Napi::Env env = self->server_->env();
      Napi::HandleScope scope(env);
      // The facts go with the close only if JS never asked: it may still ask once the slot is gone.
      napi_value facts = self->facts_taken_ ? env.Undefined() : self->Facts(env);
      self->CallJs(self->server_->callbacks().closed, {OutcomeToJs(env, self->engine_.outcome()), facts});
    });
    self->held_ = false;
  }
  TcpServer* server = self->server_;
  server->Forget(self);
  delete self;
}

bool TcpConnection::CallJs(const Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  if (!held_ || server_->exiting()) return true;
  Napi::Env env = server_->env();
  Napi::HandleScope scope(env);
  napi_value argv[4];
  size_t argc = 0;
  argv[argc++] = Napi::Number::New(env, id_);
  for (napi_value a : args) {
    if (argc < 4) argv[argc++] = a;
  }
  napi_value r = nullptr;
  if (!server_->Call(env.Global(), fn.Value(), argc, argv, &r)) return true;
  bool b = true;
  return napi_get_value_bool(env, r, &b) != napi_ok || b;
}

void TcpConnection::RememberAddresses(bool from_listener) {
  // The peer's address now: a peer that reset is gone from getpeername. The local one is the
  // listener's when it is bound to one address (no system call), else the kernel's.
  RawNameOf(&tcp_, true, &remote_);
  if (!from_listener || !server_->LocalAddress(&local_)) RawNameOf(&tcp_, false, &local_);
}

namespace {

// Writes text and numbers into a buffer that the caller sized: no reallocation, no printf.
class Packer {
 public:
  explicit Packer(char* at) : at_(at) {}
  char* at() const { return at_; }
  void Bytes(const char* s, size_t n) {
    std::memcpy(at_, s, n);
    at_ += n;
  }
  void Field(const char* s, size_t n) {
    Bytes(s, n);
    *at_++ = '\0';
  }
  void Field(const std::string& s) { Field(s.data(), s.size()); }
  void Number(unsigned long v) {
    char text[24];
    char* end = text + sizeof text;
    char* p = end;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    Field(p, static_cast<size_t>(end - p));
  }
  void Address(const RawAddress& a) {
    at_ = WriteAddress(a, at_);
    *at_++ = '\0';
    Number(static_cast<unsigned long>(PortOf(a)));
  }

 private:
  char* at_;
};

}  // namespace

// remoteAddress, remotePort, localAddress, localPort, reused, protocol, cipher, cipherStandardName,
// certRequested, verifyCode, verifyError, id (hex), alpn length, servername length — each followed by
// a NUL — then the ALPN protocol, the server name and the peer certificate (DER), raw bytes (latin1).
Napi::Value TcpConnection::Facts(Napi::Env env) {
  facts_taken_ = true;
  const SessionInfo& s = engine_.session();
  const char* code = "";
  const char* text = "";
  if (s.verify_result != X509_V_OK) {
    code = VerifyErrorCode(s.verify_result);
    text = X509_verify_cert_error_string(s.verify_result);
  }
  size_t code_len = std::strlen(code), text_len = std::strlen(text);
  size_t id_len = std::min(s.id.size(), static_cast<size_t>(SSL_MAX_SSL_SESSION_ID_LENGTH));
  // Two addresses (≤ 45 characters each), six numbers (two ports, two flags, two lengths; ≤ 20 digits
  // each) and fourteen NULs.
  size_t size = 2 * kAddressTextMax + 6 * 20 + 14 + s.protocol.size() + s.cipher.size() +
                s.cipher_standard_name.size() + code_len + text_len + 2 * id_len + s.alpn.size() + s.servername.size() +
                s.peer_certificate.size();
  // Usually on the stack; a client certificate makes it bigger.
  char small[768];
  std::unique_ptr<char[]> big(size > sizeof small ? new char[size] : nullptr);
  char* start = big ? big.get() : small;
  Packer p(start);
  p.Address(remote_);
  p.Address(local_);
  p.Number(s.reused ? 1 : 0);
  p.Field(s.protocol);
  p.Field(s.cipher);
  p.Field(s.cipher_standard_name);
  p.Number(s.cert_requested ? 1 : 0);
  p.Field(code, code_len);
  p.Field(text, text_len);
  static const char kHex[] = "0123456789abcdef";
  char hex[2 * SSL_MAX_SSL_SESSION_ID_LENGTH];
  for (size_t i = 0; i < id_len; ++i) {
    auto c = static_cast<unsigned char>(s.id[i]);
    hex[2 * i] = kHex[c >> 4];
    hex[2 * i + 1] = kHex[c & 15];
  }
  p.Field(hex, 2 * id_len);
  p.Number(s.alpn.size());
  p.Number(s.servername.size());
  p.Bytes(s.alpn.data(), s.alpn.size());
  p.Bytes(s.servername.data(), s.servername.size());
  p.Bytes(s.peer_certificate.data(), s.peer_certificate.size());
  return Latin1String(env, start, static_cast<size_t>(p.at() - start));
}

}  // namespace osc
