#include "engine.h"

#include <openssl/err.h>

#include "errors.h"

namespace osc {

namespace {

constexpr size_t kReadChunk = 16 * 1024;  // one TLS record's worth of plaintext per SSL_read

// The write BIO: appends to the engine's Bytes, which the transport writes from directly. (A memory
// BIO would cost one more copy of every byte sent, to get it out again.)
int OutWrite(BIO* bio, const char* data, int len) {
  try {
    static_cast<Bytes*>(BIO_get_data(bio))->Append(data, static_cast<size_t>(len));
  } catch (const std::bad_alloc&) {
    return -1;
  }
  return len;
}

long OutCtrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
      return static_cast<long>(static_cast<Bytes*>(BIO_get_data(bio))->size());
    default:
      return 0;
  }
}

int OutCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* OutMethod() {
  // Created once per process, kept for its lifetime (OpenSSL holds no per-method state to free).
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "osc ciphertext out");
    if (m != nullptr) {
      BIO_meth_set_write(m, OutWrite);
      BIO_meth_set_ctrl(m, OutCtrl);
      BIO_meth_set_create(m, OutCreate);
    }
    return m;
  }();
  return method;
}

}  // namespace

Engine::Engine(std::shared_ptr<ContextCore> context, UncleanPolicy policy)
    : context_(std::move(context)), policy_(policy) {
  ErrorQueueGuard guard;
  ssl_.reset(SSL_new(context_->ctx()));
  if (!ssl_) throw TlsError("ERR_OSC_OPENSSL", TakeOpenSslError("SSL_new failed"));
  rbio_ = BIO_new(BIO_s_mem());
  BIO* wbio = OutMethod() != nullptr ? BIO_new(OutMethod()) : nullptr;
  if (rbio_ == nullptr || wbio == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio);
    throw TlsError("ERR_OSC_OPENSSL", "out of memory");
  }
  BIO_set_data(wbio, &out_);
  // An empty read BIO means "more later", never EOF: the transport reports endings via Finish().
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_.get(), rbio_, wbio);
  SSL_set_app_data(ssl_.get(), this);
  SSL_set_accept_state(ssl_.get());
}

Engine::~Engine() { Finish(Ending::kLocal); }

void Engine::OnSessionCached(SSL* ssl, SSL_SESSION* sess) {
  auto* self = static_cast<Engine*>(SSL_get_app_data(ssl));
  if (self == nullptr || self->policy_ != UncleanPolicy::kDrop) return;
  if (SSL_SESSION_up_ref(sess) == 1) self->added_sessions_.emplace_back(sess);
}

void Engine::Receive(const char* data, size_t len) {
  if (ssl_ && len > 0) BIO_write(rbio_, data, static_cast<int>(len));
}

unsigned Engine::Fail(unsigned events, const char* fallback) {
  fatal_ = true;
  error_ = TakeOpenSslError(fallback);
  events |= kFatal;
  if (PendingCiphertext() > 0) events |= kCiphertext;  // the alert
  return events;
}

unsigned Engine::Advance() {
  if (!ssl_ || fatal_) return 0;
  ErrorQueueGuard guard;
  unsigned events = 0;
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      int err = SSL_get_error(ssl_.get(), r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return Fail(events, "handshake failed");
      return PendingCiphertext() > 0 ? static_cast<unsigned>(kCiphertext) : 0u;
    }
    handshake_done_ = true;
    session_ = Info();
    events |= kHandshakeDone;
  }
  events = ReadPlaintext(events);
  if (PendingCiphertext() > 0) events |= kCiphertext;
  return events;
}

unsigned Engine::ReadPlaintext(unsigned events) {
  while (!peer_closed_) {
    size_t got = 0;
    int r = SSL_read_ex(ssl_.get(), plaintext_.Reserve(kReadChunk), kReadChunk, &got);
    plaintext_.Commit(got);
    if (r == 1) continue;
    int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      // close_notify. The answer goes out with Shutdown(), once the application has written what it
      // still had to say (the transport ends its writable side after the readable side).
      peer_closed_ = true;
      events |= kPeerClosed;
      break;
    }
    events = Fail(events, "read failed");
    break;
  }
  if (!plaintext_.empty()) events |= kPlaintext;
  return events;
}

bool Engine::Write(const char* data, size_t len) {
  if (!ssl_ || fatal_ || !handshake_done_) {
    error_ = !ssl_ ? "connection is closed" : fatal_ ? error_ : "handshake not complete";
    return false;
  }
  if (len == 0) return true;
  ErrorQueueGuard guard;
  size_t written = 0;
  // A memory BIO never pushes back, so one call encrypts everything.
  if (SSL_write_ex(ssl_.get(), data, len, &written) != 1 || written != len) {
    error_ = TakeOpenSslError("write failed");
    return false;
  }
  return true;
}

unsigned Engine::Shutdown() {
  if (!ssl_ || fatal_ || sent_close_) return 0;
  ErrorQueueGuard guard;
  sent_close_ = true;
  // Before the handshake there is no session to keep and nothing to close: the transport just ends.
  if (!handshake_done_) return 0;
  SSL_shutdown(ssl_.get());
  return PendingCiphertext() > 0 ? static_cast<unsigned>(kCiphertext) : 0u;
}

void Engine::SetShutdownFlags(int flags) {
  if (ssl_) SSL_set_shutdown(ssl_.get(), flags);
}

int Engine::shutdown_flags() const { return ssl_ ? SSL_get_shutdown(ssl_.get()) : 0; }

void Engine::Finish(Ending) {
  if (!ssl_) return;
  ErrorQueueGuard guard;
  SSL* ssl = ssl_.get();
  // A connection is closed properly, as far as OpenSSL's cache is concerned, once close_notify went
  // either way. Fatal errors already removed the session inside OpenSSL; that is final.
  bool proper = (SSL_get_shutdown(ssl) & (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)) != 0;
  if (!proper && !fatal_ && handshake_done_) {
    if (policy_ == UncleanPolicy::kKeep) {
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    } else {
      SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
      for (const SessionPtr& sess : added_sessions_) SSL_CTX_remove_session(ctx, sess.get());
      if (SSL_SESSION* current = SSL_get_session(ssl)) SSL_CTX_remove_session(ctx, current);
    }
  }
  added_sessions_.clear();
  ssl_.reset();
  rbio_ = nullptr;
}


SessionInfo Engine::Info() const {
  SessionInfo info;
  if (!ssl_) return info;
  SSL* ssl = ssl_.get();
  if (SSL_SESSION* sess = SSL_get_session(ssl)) {
    unsigned int len = 0;
    const unsigned char* id = SSL_SESSION_get_id(sess, &len);
    info.id.assign(reinterpret_cast<const char*>(id), len);
  }
  info.reused = SSL_session_reused(ssl) == 1;
  info.protocol = SSL_get_version(ssl);
  if (const char* cipher = SSL_get_cipher_name(ssl)) info.cipher = cipher;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) info.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info.servername = sni;
  if (X509Ptr peer{SSL_get1_peer_certificate(ssl)}) {
    unsigned char* der = nullptr;
    int n = i2d_X509(peer.get(), &der);
    if (n > 0) info.peer_certificate.assign(reinterpret_cast<const char*>(der), n);
    OPENSSL_free(der);
  }
  info.verify_result = SSL_get_verify_result(ssl);
  return info;
}

}  // namespace osc
