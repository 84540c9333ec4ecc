#include "engine.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <mutex>

#include "errors.h"

namespace osc {

namespace {

constexpr size_t kReadChunk = 16 * 1024;   // one TLS record's worth of plaintext per SSL_read
constexpr size_t kMinReadRoom = 2 * 1024;  // less room than this left: grow by kReadChunk first
constexpr size_t kRecordOverhead = 64;     // a TLS record's header, tag and padding, at most (TLS 1.2/1.3 AEAD)

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

// A BIO method points into this code, so it lives exactly as long as some engine uses it: nothing
// process-wide is left pointing into an addon that a worker thread unloads. A fixed type number:
// BIO_get_new_index() hands out a process-wide, finite range.
template <typename Setup>
std::shared_ptr<BIO_METHOD> SharedMethod(std::mutex& mutex, std::weak_ptr<BIO_METHOD>& current, int type,
                                         const char* name, Setup setup) {
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<BIO_METHOD> method = current.lock();
  if (method) return method;
  BIO_METHOD* m = BIO_meth_new((BIO_TYPE_START + type) | BIO_TYPE_SOURCE_SINK, name);
  if (m == nullptr) return nullptr;
  setup(m);
  BIO_meth_set_create(m, OutCreate);
  method.reset(m, BIO_meth_free);
  current = method;
  return method;
}

std::shared_ptr<BIO_METHOD> OutMethod() {
  static std::mutex mutex;
  static std::weak_ptr<BIO_METHOD> current;
  return SharedMethod(mutex, current, 0x4f, "osc ciphertext out", [](BIO_METHOD* m) {
    BIO_meth_set_write(m, OutWrite);
    BIO_meth_set_ctrl(m, OutCtrl);
  });
}

// The read BIO: reads the engine's Inbox, which holds no copy of what the transport just received. Empty
// means "more later" (retry), never EOF: the transport reports endings via Finish().
int InRead(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  size_t n = len > 0 ? static_cast<Inbox*>(BIO_get_data(bio))->Read(out, static_cast<size_t>(len)) : 0;
  if (n == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

long InCtrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_PENDING:
      return static_cast<long>(static_cast<Inbox*>(BIO_get_data(bio))->pending());
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;  // BIO_CTRL_EOF among them: never
  }
}

std::shared_ptr<BIO_METHOD> InMethod() {
  static std::mutex mutex;
  static std::weak_ptr<BIO_METHOD> current;
  return SharedMethod(mutex, current, 0x50, "osc ciphertext in", [](BIO_METHOD* m) {
    BIO_meth_set_read(m, InRead);
    BIO_meth_set_ctrl(m, InCtrl);
  });
}

}  // namespace

size_t Inbox::Read(char* out, size_t len) {
  size_t n = 0;
  if (kept_off_ < kept_.size()) {
    n = std::min(len, kept_.size() - kept_off_);
    std::memcpy(out, kept_.data() + kept_off_, n);
    kept_off_ += n;
    if (kept_off_ == kept_.size()) {
      kept_.Reset(0);
      kept_off_ = 0;
    }
  }
  if (n < len && span_len_ > 0) {
    size_t take = std::min(len - n, span_len_);
    std::memcpy(out + n, span_, take);
    span_ += take;
    span_len_ -= take;
    n += take;
  }
  return n;
}

Engine::Engine(std::shared_ptr<ContextCore> context, UncleanPolicy policy, unsigned ask)
    : context_(std::move(context)), policy_(policy), ask_(ask) {
  ErrorQueueGuard guard;
  ssl_.reset(SSL_new(context_->ctx()));
  if (!ssl_) throw TlsError("ERR_OSC_OPENSSL", TakeOpenSslError("SSL_new failed"));
  in_method_ = InMethod();
  out_method_ = OutMethod();
  BIO* rbio = in_method_ ? BIO_new(in_method_.get()) : nullptr;
  BIO* wbio = out_method_ ? BIO_new(out_method_.get()) : nullptr;
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    throw TlsError("ERR_OSC_OPENSSL", "out of memory");
  }
  BIO_set_data(rbio, &in_);
  BIO_set_data(wbio, &out_);
  SSL_set_bio(ssl_.get(), rbio, wbio);
  SSL_set_app_data(ssl_.get(), static_cast<SessionObserver*>(this));
  SSL_set_accept_state(ssl_.get());
  set_ask(ask);
}

void Engine::set_ask(unsigned ask) {
  ask_ = ask;
  if (!ssl_) return;
  if (ask_ & kAskServername) context_->EnableClientHello();
  // Called on full handshakes only; returns at once unless OCSP is asked for.
  if (ask_ & kAskOcsp) SSL_set_cert_cb(ssl_.get(), OnCertificate, this);
}

Engine::~Engine() { Finish(TransportEnd::kLocal); }

namespace {

std::string IdOf(SSL_SESSION* sess) {
  unsigned int len = 0;
  const unsigned char* id = SSL_SESSION_get_id(sess, &len);
  return std::string(reinterpret_cast<const char*>(id), len);
}

}  // namespace

void Engine::OnSessionCached(SSL_SESSION* sess) {
  if (context_->store_enabled()) {
    int len = i2d_SSL_SESSION(sess, nullptr);
    if (len > 0) {
      std::string der(static_cast<size_t>(len), '\0');
      auto* p = reinterpret_cast<unsigned char*>(&der[0]);
      if (i2d_SSL_SESSION(sess, &p) == len) {
        long left = SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) - static_cast<long>(time(nullptr));
        store_writes_.push_back({IdOf(sess), std::move(der), left > 0 ? left : 1});
      }
    }
  }
  if (policy_ != UncleanPolicy::kDrop) return;
  if (SSL_SESSION_up_ref(sess) == 1) added_sessions_.emplace_back(sess);
}

int Engine::OnClientHello(SSL* ssl, int* alert) {
  // 1. SNI, first: the host name's context must be in force before OpenSSL looks the offered session up,
  // so that the session id context it compares (ssl_get_prev_session) is that name's.
  if (sni_ == Step::kNone) {
    servername_ = OfferedServerName(ssl);
    if (!servername_.empty() && (ask_ & kAskServername)) {
      sni_ = Step::kPending;
      return SSL_CLIENT_HELLO_RETRY;
    }
    sni_ = Step::kDone;
    if (!servername_.empty()) {
      if (std::shared_ptr<ContextCore> named = context_->FindName(servername_)) UseContext(ssl, std::move(named));
    }
  } else if (sni_ == Step::kAnswered) {
    sni_ = Step::kDone;
    if (!abort_reason_.empty()) {
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_CLIENT_HELLO_ERROR;
    }
    if (sni_answer_) UseContext(ssl, std::move(sni_answer_));
  }
  // 2. The store: an internal cache hit goes on without JavaScript; a miss asks the store, once.
  if (!context_->store_enabled() || lookup_done_) return SSL_CLIENT_HELLO_SUCCESS;
  bool tls13 = false;
  std::string id = OfferedSessionId(ssl, &tls13);
  if (id.empty() || context_->Indexed(id)) return SSL_CLIENT_HELLO_SUCCESS;
  lookup_id_ = id;
  lookup_pending_ = true;
  return SSL_CLIENT_HELLO_RETRY;
}

void Engine::UseContext(SSL* ssl, std::shared_ptr<ContextCore> context) {
  if (context.get() == context_.get()) return;
  SSL_CTX* c = context->ctx();
  if (SSL_set_SSL_CTX(ssl, c) != c) return;  // out of memory: the listening context stays
  if (keylog_) {
    if (active_) active_->KeylogRef(-1);
    context->KeylogRef(1);
  }
  active_ = std::move(context);
  // SSL_set_SSL_CTX takes the certificates and the session id context; the rest of what a context
  // decides was copied into the SSL by SSL_new, so it is taken over here (as nginx does).
  SSL_set_verify(ssl, SSL_CTX_get_verify_mode(c), SSL_CTX_get_verify_callback(c));
  SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(c));
  STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(c);
  SSL_set_client_CA_list(ssl, names != nullptr ? SSL_dup_CA_list(names) : nullptr);
  SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(c));
  SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(c));
  // The certificate callback lived in the SSL's certificate set, which the switch replaced.
  if (ask_ & kAskOcsp) SSL_set_cert_cb(ssl, OnCertificate, this);
}

unsigned Engine::ResolveServername(std::shared_ptr<ContextCore> context, const std::string* error) {
  if (sni_ != Step::kPending) return 0;
  sni_ = Step::kAnswered;
  sni_answer_ = std::move(context);
  if (error != nullptr) abort_reason_ = error->empty() ? "SNICallback failed" : *error;
  return Advance();
}

int Engine::OnCertificate(SSL* ssl, void* arg) {
  auto* self = static_cast<Engine*>(arg);
  if (self->ocsp_ == Step::kAnswered) {
    self->ocsp_ = Step::kDone;
    return self->abort_reason_.empty() ? 1 : 0;
  }
  if (!(self->ask_ & kAskOcsp) || self->ocsp_ != Step::kNone ||
      SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp) {
    return 1;
  }
  X509* cert = SSL_get_certificate(ssl);
  if (cert == nullptr) return 1;
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len > 0) self->ocsp_cert_.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  if (self->ocsp_cert_.empty()) return 1;
  ContextCore* owner = self->active_ ? self->active_.get() : self->context_.get();
  self->ocsp_issuer_ = owner->IssuerDer(cert);
  self->ocsp_ = Step::kPending;
  return -1;  // SSL_ERROR_WANT_X509_LOOKUP: asked again once JS answered
}

unsigned Engine::ResolveOcsp(const std::string& response, const std::string* error) {
  if (ocsp_ != Step::kPending) return 0;
  ocsp_ = Step::kAnswered;
  ocsp_response_ = response;
  if (error != nullptr) abort_reason_ = error->empty() ? "OCSPRequest failed" : *error;
  return Advance();
}

bool Engine::StapledResponse(std::string* out) {
  if (!(ask_ & kAskOcsp) || ocsp_ == Step::kNone) return false;
  *out = ocsp_response_;
  return true;
}

void Engine::OnKeylog(const char* line) {
  if (!keylog_) return;
  try {
    keylog_lines_.emplace_back(line).push_back('\n');
  } catch (const std::bad_alloc&) {
    // A lost line of a debugging aid must not fail the handshake.
  }
}

void Engine::SetKeylog(bool on) {
  if (on == keylog_ || (on && !ssl_)) return;
  keylog_ = on;
  context_->KeylogRef(on ? 1 : -1);
  // OpenSSL asks the SSL's current SSL_CTX for the keylog callback: after an SNI switch, the name's.
  if (active_) active_->KeylogRef(on ? 1 : -1);
}

unsigned Engine::ResolveLookup(const unsigned char* der, size_t len, bool* accepted) {
  *accepted = false;
  if (!lookup_pending_) return 0;
  if (der != nullptr && len > 0 && ssl_) {
    ErrorQueueGuard guard;
    const unsigned char* p = der;
    SessionPtr sess(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(len)));
    // The host name's session id context: a session of another name (or other rules) is rejected.
    const std::string& sid_ctx = (active_ ? active_ : context_)->session_id_context();
    *accepted = sess && p == der + len && context_->AddStoredSession(sess.get(), lookup_id_, sid_ctx);
  }
  lookup_pending_ = false;
  lookup_done_ = true;
  return Advance();
}

void Engine::TakeStoreWork(std::vector<StoreWrite>* writes, std::vector<std::string>* deletes) {
  writes->swap(store_writes_);
  deletes->swap(store_deletes_);
  store_writes_.clear();
  store_deletes_.clear();
}

void Engine::Receive(const char* data, size_t len) {
  if (ssl_ && len > 0) in_.Keep(data, len);
}

unsigned Engine::Feed(const char* data, size_t len) {
  if (!ssl_) return 0;
  in_.Borrow(data, len);
  unsigned events = Advance();
  in_.Return();
  return events;
}

unsigned Engine::Fail(unsigned events, const char* fallback) {
  fatal_ = true;
  error_ = TakeOpenSslError(fallback);
  if (!abort_reason_.empty()) error_ = abort_reason_;  // JS's reason, not OpenSSL's "callback failed"
  events |= kFatal;
  if (PendingCiphertext() > 0) events |= kCiphertext;  // the alert
  return events;
}

unsigned Engine::Advance() {
  if (!ssl_ || fatal_ || waiting()) return 0;
  ErrorQueueGuard guard;
  unsigned events = 0;
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_CLIENT_HELLO_CB)
        events |= sni_ == Step::kPending ? kServername : kLookup;
      else if (err == SSL_ERROR_WANT_X509_LOOKUP && ocsp_ == Step::kPending)
        events |= kOcsp;
      else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        return Fail(events, "handshake failed");
      return events | (PendingCiphertext() > 0 ? static_cast<unsigned>(kCiphertext) : 0u);
    }
    handshake_done_ = true;
    session_ = Info();
    events |= kHandshakeDone;
  }
  events = ReadPlaintext(events);
  if (PendingCiphertext() > 0) events |= kCiphertext;
  if (has_store_work()) events |= kStoreWork;
  return events;
}

unsigned Engine::ReadPlaintext(unsigned events) {
  while (!peer_closed_) {
    // Into the room left. When little is left: room for all the ciphertext at hand (plaintext is never
    // longer), at least a record's worth, in one allocation, so a big read does not double the buffer
    // (a realloc and a copy) record after record; and no buffer at all when there is nothing to read.
    if (plaintext_.room() < kMinReadRoom) {
      if (in_.pending() == 0 && SSL_has_pending(ssl_.get()) == 0) break;
      plaintext_.Reserve(std::max(kReadChunk, in_.pending()));
    }
    size_t got = 0;
    int r = SSL_read_ex(ssl_.get(), plaintext_.data() + plaintext_.size(), plaintext_.room(), &got);
    plaintext_.Commit(got);
    if (r == 1) continue;
    int err = SSL_get_error(ssl_.get(), r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      // close_notify. The answer goes out with Shutdown(), once the application has written what it
      // still had to say (the transport ends its writable side after the readable side).
      peer_closed_ = true;
      peer_closed_first_ = !sent_close_;
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
  // Room for every record at once (a header, tag and padding per 16 KiB): one allocation, not a
  // doubling (a realloc and a copy) record after record.
  try {
    out_.Reserve(len + (len / kReadChunk + 1) * kRecordOverhead);
  } catch (const std::bad_alloc&) {
    error_ = "out of memory";
    return false;
  }
  // The write BIO never pushes back, so one call encrypts everything.
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
  if (ssl_) SSL_set_shutdown(ssl_.get(), flags & (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN));
}

int Engine::shutdown_flags() const { return ssl_ ? SSL_get_shutdown(ssl_.get()) : 0; }

namespace {

// A socket error that only means the peer went away without a word.
bool IsReset(const char* code) {
  return code != nullptr && (std::strcmp(code, "ECONNRESET") == 0 || std::strcmp(code, "EPIPE") == 0 ||
                             std::strcmp(code, "ECONNABORTED") == 0);
}

}  // namespace

void Engine::Decide(TransportEnd how, const char* sys_code) {
  Outcome& o = outcome_;
  o.handshake_done = handshake_done_;
  bool reset = how == TransportEnd::kError && IsReset(sys_code);
  if (fatal_) {
    o.ending = Ending::kError;
    o.code = handshake_done_ ? "ERR_OSC_TLS" : "ERR_OSC_HANDSHAKE";
    o.reason = error_;
  } else if (!handshake_done_) {
    switch (how) {
      case TransportEnd::kEof:
        o.ending = Ending::kEof;
        o.reason = "client closed the connection during the handshake";
        break;
      case TransportEnd::kError:
        o.ending = reset ? Ending::kReset : Ending::kError;
        o.reason = std::string("client network error during the handshake: ") + (sys_code ? sys_code : "unknown");
        break;
      case TransportEnd::kTimeout:
        o.ending = Ending::kError;
        o.reason = "handshake timed out";
        break;
      case TransportEnd::kLocal:
        o.ending = Ending::kLocal;
        o.reason = "connection closed by the server during the handshake";
        break;
    }
    o.code = how == TransportEnd::kTimeout ? "ERR_OSC_HANDSHAKE_TIMEOUT" : "ERR_OSC_HANDSHAKE";
  } else if (peer_closed_first_) {
    o.ending = Ending::kCloseNotify;  // whatever the socket did after it
  } else if (sent_close_ || how == TransportEnd::kLocal || how == TransportEnd::kTimeout) {
    o.ending = Ending::kLocal;
  } else if (how == TransportEnd::kEof) {
    o.ending = Ending::kEof;
  } else if (reset) {
    o.ending = Ending::kReset;
  } else {
    o.ending = Ending::kError;
    o.code = sys_code != nullptr ? sys_code : "EIO";
    o.reason = "socket error: " + o.code;
  }
  o.clean = handshake_done_ && !fatal_ && (peer_closed_ || sent_close_);
}

const Outcome& Engine::Finish(TransportEnd how, const char* sys_code) {
  if (!ssl_) return outcome_;
  ErrorQueueGuard guard;
  Decide(how, sys_code);
  SSL* ssl = ssl_.get();
  // A connection is closed properly, as far as OpenSSL's cache is concerned, once close_notify went
  // either way. Fatal errors already removed the session inside OpenSSL; that is final.
  bool proper = (SSL_get_shutdown(ssl) & (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)) != 0;
  if (!proper && !fatal_ && handshake_done_) {
    if (policy_ == UncleanPolicy::kKeep) {
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    } else {
      SSL_CTX* ctx = context_->ctx();  // the cache (session_ctx), whichever host name's context is in force
      for (const SessionPtr& sess : added_sessions_) {
        SSL_CTX_remove_session(ctx, sess.get());
        if (context_->store_enabled()) store_deletes_.push_back(IdOf(sess.get()));
      }
      if (SSL_SESSION* current = SSL_get_session(ssl)) {
        SSL_CTX_remove_session(ctx, current);
        if (context_->store_enabled()) store_deletes_.push_back(IdOf(current));
      }
    }
  } else if (fatal_ && handshake_done_ && context_->store_enabled()) {
    // OpenSSL removed the session of a connection that failed: so does the store.
    if (SSL_SESSION* current = SSL_get_session(ssl)) store_deletes_.push_back(IdOf(current));
  }
  added_sessions_.clear();
  SetKeylog(false);
  ssl_.reset();
  return outcome_;
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
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
    if (const char* standard = SSL_CIPHER_standard_name(c)) info.cipher_standard_name = standard;
  }
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
  info.cert_requested = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
  return info;
}

std::string Engine::SessionDer() const {
  SSL_SESSION* sess = ssl_ ? SSL_get_session(ssl_.get()) : nullptr;
  int len = sess != nullptr ? i2d_SSL_SESSION(sess, nullptr) : 0;
  if (len <= 0) return {};
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(&der[0]);
  return i2d_SSL_SESSION(sess, &p) == len ? der : std::string();
}

std::string Engine::CertificateDer() const {
  X509* cert = ssl_ ? SSL_get_certificate(ssl_.get()) : nullptr;
  unsigned char* der = nullptr;
  int len = cert != nullptr ? i2d_X509(cert, &der) : 0;
  std::string out = len > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)) : std::string();
  OPENSSL_free(der);
  return out;
}

bool Engine::ExportKeyingMaterial(size_t length, const std::string& label, const std::string* context,
                                  std::string* out) const {
  if (!ssl_ || !handshake_done_) return false;
  ErrorQueueGuard guard;
  out->assign(length, '\0');
  const auto* ctx = context != nullptr ? reinterpret_cast<const unsigned char*>(context->data()) : nullptr;
  return SSL_export_keying_material(ssl_.get(), reinterpret_cast<unsigned char*>(&(*out)[0]), length, label.data(),
                                    label.size(), ctx, context != nullptr ? context->size() : 0,
                                    context != nullptr ? 1 : 0) == 1;
}

std::string Engine::Finished(bool peer) const {
  if (!ssl_) return {};
  char buf[EVP_MAX_MD_SIZE];
  size_t n = peer ? SSL_get_peer_finished(ssl_.get(), buf, sizeof buf) : SSL_get_finished(ssl_.get(), buf, sizeof buf);
  return std::string(buf, n < sizeof buf ? n : sizeof buf);
}

std::vector<std::string> Engine::SharedSignatureAlgorithms() const {
  std::vector<std::string> out;
  if (!ssl_) return out;
  int n = SSL_get_shared_sigalgs(ssl_.get(), 0, nullptr, nullptr, nullptr, nullptr, nullptr);
  for (int i = 0; i < n; ++i) {
    int sign = NID_undef, hash = NID_undef;
    SSL_get_shared_sigalgs(ssl_.get(), i, &sign, &hash, nullptr, nullptr, nullptr);
    // The names node:tls gives (src/crypto/crypto_tls.cc).
    std::string name;
    switch (sign) {
      case EVP_PKEY_RSA:
        name = "RSA";
        break;
      case EVP_PKEY_RSA_PSS:
        name = "RSA-PSS";
        break;
      case EVP_PKEY_DSA:
        name = "DSA";
        break;
      case EVP_PKEY_EC:
        name = "ECDSA";
        break;
      case NID_ED25519:
        name = "Ed25519";
        break;
      case NID_ED448:
        name = "Ed448";
        break;
      default:
        name = OBJ_nid2sn(sign) != nullptr ? OBJ_nid2sn(sign) : "UNDEF";
    }
    const char* hash_name = hash != NID_undef ? OBJ_nid2sn(hash) : nullptr;
    name += std::string("+") + (hash_name != nullptr ? hash_name : "UNDEF");
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace osc
