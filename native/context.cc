#include "context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "errors.h"

namespace osc {

namespace {

// No ex_data index is registered here: indexes and their callbacks are process-wide, and a worker
// thread unloads this code with it. The SSL_CTX (ours alone) keeps its ContextCore in its app-data
// slot, and a session marks itself as cached in its own app-data slot, which OpenSSL reserves without
// callbacks and copies verbatim when it duplicates a session (the next TLS 1.3 ticket): a copy then
// holds its original's address, not its own, so it does not count as cached until it is added itself.
// OpenSSL calls the remove callback on every removal attempt, found or not (SSL_free, fatal alerts,
// repeated removes), so this mark is what tells a real removal from a no-op.
void MarkCached(SSL_SESSION* sess, bool cached) { SSL_SESSION_set_app_data(sess, cached ? sess : nullptr); }
bool IsCached(SSL_SESSION* sess) { return SSL_SESSION_get_app_data(sess) == sess; }

[[noreturn]] void Fail(const char* code, const char* fallback) { throw TlsError(code, TakeOpenSslError(fallback)); }

BioPtr MemBio(const std::string& data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) Fail("ERR_OSC_OPENSSL", "out of memory");
  return bio;
}

int PassphraseCallback(char* buf, int size, int, void* u) {
  auto* pass = static_cast<const std::string*>(u);
  int n = static_cast<int>(pass->size());
  if (n > size) return -1;
  std::memcpy(buf, pass->data(), n);
  return n;
}

// rejectUnauthorized: false — record the verdict (SSL_get_verify_result) but let the handshake go on.
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

}  // namespace

ContextCore* ContextCore::From(SSL_CTX* ctx) { return static_cast<ContextCore*>(SSL_CTX_get_app_data(ctx)); }

ContextCore::ContextCore() {
  ErrorQueueGuard guard;
  // OpenSSL 3.0 fails to duplicate a session (the next TLS 1.3 ticket: "malloc failure") whose app data
  // is set while no SSL_SESSION ex_data index was ever registered in the process. One index without
  // callbacks makes that table exist; it is never used, and it points at no code of ours.
  static const int session_ex_table = SSL_SESSION_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  (void)session_ex_table;
  ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ctx_) Fail("ERR_OSC_OPENSSL", "SSL_CTX_new failed");
  SSL_CTX* c = ctx_.get();
  SSL_CTX_set_app_data(c, this);
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // Tickets off: TLS 1.2 resumes by session id, TLS 1.3 statefully, both from the internal cache.
  SSL_CTX_set_options(
      c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(c, 20480);
  SSL_CTX_set_timeout(c, 300);
  SSL_CTX_sess_set_new_cb(c, OnNewSession);
  SSL_CTX_sess_set_remove_cb(c, OnRemoveSession);  // the index is on (tickets are off)
  SSL_CTX_set_alpn_select_cb(c, OnAlpnSelect, this);
  // Random ticket keys until the user gives some (as node:tls); used only once tickets are on.
  TicketKey key{};
  if (RAND_bytes(key.bytes, sizeof key.bytes) != 1) Fail("ERR_OSC_OPENSSL", "RAND_bytes failed");
  ticket_keys_.push_back(key);
  OPENSSL_cleanse(&key, sizeof key);
  // Called only for a client that asks for OCSP (status_request): staples the response, if any.
  SSL_CTX_set_tlsext_status_cb(c, OnStatus);
  SSL_CTX_set_tlsext_status_arg(c, this);
}

ContextCore::~ContextCore() {
  // SSL_CTX_free flushes the cache through the remove callback; nobody is listening any more.
  {
    std::lock_guard<std::mutex> lock(events_mutex_);
    sinks_.clear();
  }
  SSL_CTX_sess_set_remove_cb(ctx_.get(), nullptr);
  SSL_CTX_set_app_data(ctx_.get(), nullptr);
  OPENSSL_cleanse(ticket_keys_.data(), ticket_keys_.size() * sizeof(TicketKey));
}

void ContextCore::UseCertificateChain(const std::string& pem) {
  ErrorQueueGuard guard;
  BioPtr bio = MemBio(pem);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) Fail("ERR_OSC_BAD_CERT", "no certificate found in PEM");
  if (SSL_CTX_use_certificate(ctx_.get(), leaf.get()) != 1) Fail("ERR_OSC_BAD_CERT", "bad certificate");
  SSL_CTX_clear_chain_certs(ctx_.get());
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx_.get(), extra) != 1) {
      X509_free(extra);
      Fail("ERR_OSC_BAD_CERT", "bad chain certificate");
    }
  }
  // The loop ends on "no start line" once the PEM is exhausted: that is not an error.
  ERR_clear_error();
}

void ContextCore::UsePrivateKey(const std::string& pem, const std::string& passphrase, bool check) {
  ErrorQueueGuard guard;
  BioPtr bio = MemBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, const_cast<std::string*>(&passphrase)));
  if (!key) Fail("ERR_OSC_BAD_KEY", "no private key found in PEM");
  // OpenSSL puts the key in the slot of its type and checks it against that slot's certificate.
  if (SSL_CTX_use_PrivateKey(ctx_.get(), key.get()) != 1) Fail("ERR_OSC_KEY_MISMATCH", "key values mismatch");
  if (check && SSL_CTX_check_private_key(ctx_.get()) != 1) Fail("ERR_OSC_KEY_MISMATCH", "key values mismatch");
}

void ContextCore::CheckKeyPairs(size_t certificates) {
  ErrorQueueGuard guard;
  SSL_CTX* c = ctx_.get();
  X509* current = SSL_CTX_get0_certificate(c);
  // The iteration visits only the slots that hold a certificate and its key.
  size_t paired = 0;
  for (long r = SSL_CTX_set_current_cert(c, SSL_CERT_SET_FIRST); r == 1;
       r = SSL_CTX_set_current_cert(c, SSL_CERT_SET_NEXT)) {
    if (SSL_CTX_check_private_key(c) != 1) Fail("ERR_OSC_KEY_MISMATCH", "key values mismatch");
    ++paired;
  }
  if (current != nullptr) SSL_CTX_select_current_cert(c, current);
  if (paired != certificates) {
    throw TlsError("ERR_OSC_KEY_MISMATCH", "a certificate has no private key of its type");
  }
  ERR_clear_error();
}

void ContextCore::SetTicketKeys(const std::string& keys) {
  if (keys.size() != kTicketKeyLength) throw TlsError("ERR_OSC_BAD_OPTION", "ticket keys are 48 bytes");
  std::lock_guard<std::mutex> lock(ticket_mutex_);
  TicketKey& current = ticket_keys_.front();
  if (std::memcmp(current.bytes, keys.data(), kTicketKeyLength) == 0) return;  // no change: no rotation
  TicketKey next{};
  std::memcpy(next.bytes, keys.data(), kTicketKeyLength);
  current.replaced = time(nullptr);
  ticket_keys_.insert(ticket_keys_.begin(), next);
  // A key with the same name as the new one can no longer be told apart: it goes.
  for (size_t i = 1; i < ticket_keys_.size();) {
    if (std::memcmp(ticket_keys_[i].bytes, next.bytes, 16) == 0 || i > kPreviousTicketKeys) {
      OPENSSL_cleanse(&ticket_keys_[i], sizeof(TicketKey));
      ticket_keys_.erase(ticket_keys_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  OPENSSL_cleanse(&next, sizeof next);
}

std::string ContextCore::GetTicketKeys() {
  std::lock_guard<std::mutex> lock(ticket_mutex_);
  return std::string(reinterpret_cast<const char*>(ticket_keys_.front().bytes), kTicketKeyLength);
}

// SSL_CTX_set_tlsext_ticket_key_evp_cb: node's TicketCompatibilityCallback with rotation. Encrypting:
// the current key, a random IV. Decrypting: the key whose name the ticket carries; 0 (ticket ignored,
// full handshake) for an unknown or expired name; 2 (resume and issue a new ticket) for a previous key.
int ContextCore::OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* ectx, EVP_MAC_CTX* hctx,
                             int enc) {
  ContextCore* self = From(SSL_get_SSL_CTX(ssl));
  if (self == nullptr) return -1;
  TicketKey key{};
  int result = 1;
  {
    std::lock_guard<std::mutex> lock(self->ticket_mutex_);
    const std::vector<TicketKey>& keys = self->ticket_keys_;
    if (enc) {
      key = keys.front();
    } else {
      time_t now = time(nullptr);
      long lifetime = SSL_CTX_get_timeout(self->ctx_.get());
      size_t i = 0;
      for (; i < keys.size(); ++i) {
        if (std::memcmp(keys[i].bytes, name, 16) != 0) continue;
        if (i == 0 || keys[i].replaced + lifetime > now) break;
      }
      if (i == keys.size()) return 0;
      key = keys[i];
      result = i == 0 ? 1 : 2;
    }
  }
  const unsigned char* hmac_key = key.bytes + 16;
  const unsigned char* aes_key = key.bytes + 32;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(hmac_key), 16),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  bool ok = true;
  if (enc) {
    std::memcpy(name, key.bytes, 16);
    ok = RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(ectx, EVP_aes_128_cbc(), nullptr, aes_key, iv) == 1;
  } else {
    ok = EVP_DecryptInit_ex(ectx, EVP_aes_128_cbc(), nullptr, aes_key, iv) == 1;
  }
  ok = ok && EVP_MAC_CTX_set_params(hctx, params) == 1;
  OPENSSL_cleanse(&key, sizeof key);
  return ok ? result : -1;
}

void ContextCore::KeylogRef(int delta) {
  std::lock_guard<std::mutex> lock(keylog_mutex_);
  keylog_refs_ += delta;
  SSL_CTX_set_keylog_callback(ctx_.get(), keylog_refs_ > 0 ? OnKeylog : nullptr);
}

void ContextCore::OnKeylog(const SSL* ssl, const char* line) {
  if (auto* observer = static_cast<SessionObserver*>(SSL_get_app_data(ssl))) observer->OnKeylog(line);
}

void ContextCore::AddTrustedCertificates(const std::string& pem) {
  ErrorQueueGuard guard;
  BioPtr bio = MemBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx_.get());
  int count = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store, cert.get()) != 1 || SSL_CTX_add_client_CA(ctx_.get(), cert.get()) != 1) {
      Fail("ERR_OSC_BAD_CA", "bad CA certificate");
    }
    ++count;
  }
  if (count == 0) Fail("ERR_OSC_BAD_CA", "no CA certificate found in PEM");
  ERR_clear_error();
}

void ContextCore::SetVerify(bool request_cert, bool reject_unauthorized) {
  if (!request_cert) {
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
  } else if (reject_unauthorized) {
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, AcceptAnyCertificate);
  }
}

void ContextCore::SetProtocolRange(int min_version, int max_version) {
  ErrorQueueGuard guard;
  if (SSL_CTX_set_min_proto_version(ctx_.get(), min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx_.get(), max_version) != 1) {
    Fail("ERR_OSC_BAD_OPTION", "unsupported protocol version");
  }
}

void ContextCore::SetCipherList(const std::string& ciphers) {
  ErrorQueueGuard guard;
  if (SSL_CTX_set_cipher_list(ctx_.get(), ciphers.c_str()) != 1) Fail("ERR_OSC_BAD_OPTION", "no cipher match");
}

void ContextCore::SetCipherSuites(const std::string& suites) {
  ErrorQueueGuard guard;
  if (SSL_CTX_set_ciphersuites(ctx_.get(), suites.c_str()) != 1) Fail("ERR_OSC_BAD_OPTION", "no cipher match");
}

void ContextCore::SetAlpnProtocols(const std::string& wire) { alpn_ = wire; }

int ContextCore::OnAlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                              unsigned int inlen, void* arg) {
  const ContextCore* self = static_cast<ContextCore*>(arg);
  // A host name's context without ALPN names of its own takes the listening context's: in node:tls the
  // protocols are the server's, whatever SNI picked (createHttpsServer relies on it).
  if (self->alpn_.empty()) {
    if (auto* observer = static_cast<SessionObserver*>(SSL_get_app_data(ssl))) self = observer->CacheOwner();
  }
  if (self->alpn_.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* selected = nullptr;
  int r = SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(self->alpn_.data()),
                                static_cast<unsigned int>(self->alpn_.size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301: no_application_protocol
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

void ContextCore::SetSessionCacheEnabled(bool enabled) {
  SSL_CTX_set_session_cache_mode(ctx_.get(), enabled ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
}

void ContextCore::SetSessionCacheSize(long size) { SSL_CTX_sess_set_cache_size(ctx_.get(), size); }

void ContextCore::SetSessionTimeout(long seconds) { SSL_CTX_set_timeout(ctx_.get(), seconds); }

void ContextCore::SetTickets(bool enabled) {
  if (enabled) {
    SSL_CTX_clear_options(ctx_.get(), SSL_OP_NO_TICKET);
  } else {
    SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_TICKET);
  }
  // Our keys (node's ticket format) while tickets are on; nothing on the path of the stateful cache.
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx_.get(), enabled ? OnTicketKey : nullptr);
  UpdateIndexing();
}

void ContextCore::SetNumTickets(size_t n) { SSL_CTX_set_num_tickets(ctx_.get(), n); }

void ContextCore::SetSessionIdContext(const std::string& sid_ctx) {
  ErrorQueueGuard guard;
  if (SSL_CTX_set_session_id_context(ctx_.get(), reinterpret_cast<const unsigned char*>(sid_ctx.data()),
                                     static_cast<unsigned int>(sid_ctx.size())) != 1) {
    Fail("ERR_OSC_BAD_OPTION", "session id context too long");
  }
  sid_ctx_ = sid_ctx;
}

std::string ContextCore::DeriveSessionIdContext(const std::string& service_name) const {
  ErrorQueueGuard guard;
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) Fail("ERR_OSC_OPENSSL", "digest failed");
  auto feed = [&](const void* data, size_t len) {
    // Length-prefixed so that ("ab","c") and ("a","bc") differ.
    uint32_t n = static_cast<uint32_t>(len);
    EVP_DigestUpdate(md.get(), &n, sizeof n);
    EVP_DigestUpdate(md.get(), data, len);
  };
  auto feed_der = [&](auto to_der, const auto* obj) {
    unsigned char* der = nullptr;
    int len = to_der(obj, &der);
    if (len > 0) feed(der, static_cast<size_t>(len));
    OPENSSL_free(der);
  };
  feed("openssl-session-cache/sid-ctx/1", 31);
  feed(service_name.data(), service_name.size());
  // Every certificate (one per key type); the one in force is put back afterwards.
  SSL_CTX* c = ctx_.get();
  X509* current = SSL_CTX_get0_certificate(c);
  size_t fed = 0;
  for (long r = SSL_CTX_set_current_cert(c, SSL_CERT_SET_FIRST); r == 1;
       r = SSL_CTX_set_current_cert(c, SSL_CERT_SET_NEXT)) {
    if (X509* cert = SSL_CTX_get0_certificate(c)) {
      feed_der(i2d_X509, cert);
      ++fed;
    }
  }
  if (current != nullptr) {
    SSL_CTX_select_current_cert(c, current);
    if (fed == 0) feed_der(i2d_X509, current);
  }
  int mode = SSL_CTX_get_verify_mode(ctx_.get());
  feed(&mode, sizeof mode);
  if (STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(ctx_.get())) {
    for (int i = 0; i < sk_X509_NAME_num(names); ++i) feed_der(i2d_X509_NAME, sk_X509_NAME_value(names, i));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md.get(), digest, &len) != 1) Fail("ERR_OSC_OPENSSL", "digest failed");
  static_assert(SSL_MAX_SID_CTX_LENGTH == 32, "SHA-256 fills the context exactly");
  return std::string(reinterpret_cast<char*>(digest), len);
}

void ContextCore::FlushSessions(bool expired_only) {
  ErrorQueueGuard guard;
  SSL_CTX_flush_sessions(ctx_.get(), expired_only ? static_cast<long>(time(nullptr)) : 0);
}

bool ContextCore::RemoveSession(const std::string& id) {
  ErrorQueueGuard guard;
  if (id.empty() || id.size() > SSL_MAX_SSL_SESSION_ID_LENGTH) return false;
  // The cache is keyed by (protocol version, id): probe with a placeholder for each version. The
  // placeholder carries no cached mark, so its remove callback is no event; this one is.
  static const int kVersions[] = {TLS1_3_VERSION, TLS1_2_VERSION, TLS1_1_VERSION, TLS1_VERSION};
  for (int version : kVersions) {
    SessionPtr probe(SSL_SESSION_new());
    if (!probe) return false;
    SSL_SESSION_set1_id(probe.get(), reinterpret_cast<const unsigned char*>(id.data()),
                        static_cast<unsigned int>(id.size()));
    SSL_SESSION_set_protocol_version(probe.get(), version);
    if (SSL_CTX_remove_session(ctx_.get(), probe.get()) == 1) {
      {
        std::lock_guard<std::mutex> lock(index_mutex_);
        index_.erase(id);
      }
      QueueId(SessionEventType::kRemoved, id);
      return true;
    }
  }
  return false;
}

CacheStats ContextCore::Stats() const {
  SSL_CTX* c = ctx_.get();
  return CacheStats{SSL_CTX_sess_number(c),
                    SSL_CTX_sess_connect(c),
                    SSL_CTX_sess_accept(c),
                    SSL_CTX_sess_accept_good(c),
                    SSL_CTX_sess_accept_renegotiate(c),
                    SSL_CTX_sess_hits(c),
                    SSL_CTX_sess_misses(c),
                    SSL_CTX_sess_timeouts(c),
                    SSL_CTX_sess_cache_full(c),
                    SSL_CTX_sess_cb_hits(c)};
}

ContextCore::SinkId ContextCore::AddEventSink(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(events_mutex_);
  SinkId id = next_sink_++;
  sinks_.push_back({id, std::move(notify), {}});
  sink_count_.store(sinks_.size());
  UpdateRemoveCallback();
  return id;
}

void ContextCore::RemoveEventSink(SinkId id) {
  std::lock_guard<std::mutex> lock(events_mutex_);
  for (auto it = sinks_.begin(); it != sinks_.end(); ++it) {
    if (it->id == id) {
      sinks_.erase(it);
      break;
    }
  }
  sink_count_.store(sinks_.size());
  UpdateRemoveCallback();
}

void ContextCore::UpdateRemoveCallback() {
  // The remove callback serves the events and the store's index. Left unset otherwise, because its mere
  // presence makes OpenSSL cache TLS 1.3 sessions sent as stateless tickets, which never resume from
  // the cache.
  bool needed = !sinks_.empty() || indexed();
  SSL_CTX_sess_set_remove_cb(ctx_.get(), needed ? OnRemoveSession : nullptr);
}

void ContextCore::SetStoreEnabled(bool on) {
  store_enabled_.store(on);
  UpdateClientHello();
  UpdateIndexing();
}

void ContextCore::UpdateClientHello() {
  // Only while something needs it: every handshake pays for the callback.
  bool on = store_enabled() || has_names() || hello_forced_.load();
  SSL_CTX_set_client_hello_cb(ctx_.get(), on ? OnClientHello : nullptr, nullptr);
}

void ContextCore::EnableClientHello() {
  if (hello_forced_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(names_mutex_);
  UpdateClientHello();
}

void ContextCore::AddName(const std::string& pattern, std::shared_ptr<ContextCore> core) {
  if (!core || core.get() == this) throw TlsError("ERR_OSC_BAD_OPTION", "a context cannot be a name of itself");
  if (core->has_names()) {
    throw TlsError("ERR_OSC_BAD_OPTION", "a context that has host names of its own cannot serve a host name");
  }
  if (is_name_.load()) {
    throw TlsError("ERR_OSC_BAD_OPTION", "this context serves a host name of another context: it cannot have names");
  }
  core->is_name_.store(true);
  std::lock_guard<std::mutex> lock(names_mutex_);
  names_.push_back({pattern, std::move(core)});
  has_names_.store(true);
  UpdateClientHello();
}

std::shared_ptr<ContextCore> ContextCore::FindName(const std::string& servername) {
  if (!has_names()) return nullptr;
  std::lock_guard<std::mutex> lock(names_mutex_);
  for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
    if (MatchesHostPattern(it->pattern, servername)) return it->core;
  }
  return nullptr;
}

bool ContextCore::KnownSessionIdContext(const std::string& sid_ctx) {
  if (sid_ctx == sid_ctx_) return true;
  std::lock_guard<std::mutex> lock(names_mutex_);
  for (const Name& n : names_) {
    if (n.core->session_id_context() == sid_ctx) return true;
  }
  return false;
}

void ContextCore::SetOcspResponse(std::string der) {
  std::lock_guard<std::mutex> lock(ocsp_mutex_);
  ocsp_response_ = std::move(der);
}

std::string ContextCore::OcspResponse() {
  std::lock_guard<std::mutex> lock(ocsp_mutex_);
  return ocsp_response_;
}

std::string ContextCore::IssuerDer(X509* cert) {
  if (cert == nullptr) return {};
  ErrorQueueGuard guard;
  X509* issuer = nullptr;
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx_.get(), &chain);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain) && issuer == nullptr; ++i) {
    X509* c = sk_X509_value(chain, i);
    if (X509_check_issued(c, cert) == X509_V_OK) issuer = c;
  }
  X509Ptr found;
  if (issuer == nullptr) {
    // The trusted CAs (node looks there too).
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_.get());
    STACK_OF(X509)* all = store != nullptr ? X509_STORE_get1_all_certs(store) : nullptr;
    for (int i = 0; all != nullptr && i < sk_X509_num(all) && issuer == nullptr; ++i) {
      X509* c = sk_X509_value(all, i);
      if (X509_check_issued(c, cert) == X509_V_OK && X509_up_ref(c) == 1) {
        found.reset(c);
        issuer = c;
      }
    }
    sk_X509_pop_free(all, X509_free);
  }
  if (issuer == nullptr || issuer == cert) return {};
  unsigned char* der = nullptr;
  int len = i2d_X509(issuer, &der);
  std::string out = len > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)) : std::string();
  OPENSSL_free(der);
  return out;
}

int ContextCore::OnStatus(SSL* ssl, void* arg) {
  auto* self = static_cast<ContextCore*>(arg);
  auto* observer = static_cast<SessionObserver*>(SSL_get_app_data(ssl));
  std::string response;
  if (observer == nullptr || !observer->StapledResponse(&response)) {
    if (self == nullptr) return SSL_TLSEXT_ERR_NOACK;
    response = self->OcspResponse();
  }
  if (response.empty()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(response.data(), response.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  // OpenSSL takes the copy over and frees it with the SSL.
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(response.size()));
  return SSL_TLSEXT_ERR_OK;
}

bool MatchesHostPattern(const std::string& pattern, const std::string& name) {
  // Iterative glob with backtracking to the last '*', which may not swallow a dot.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos && name[mark] != '.') {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void ContextCore::UpdateIndexing() {
  bool on = store_enabled() || (SSL_CTX_get_options(ctx_.get()) & SSL_OP_NO_TICKET) != 0;
  {
    std::lock_guard<std::mutex> lock(index_mutex_);
    if (on != indexed()) index_.clear();  // sessions cached meanwhile are not indexed: start afresh
    index_enabled_.store(on);
  }
  std::lock_guard<std::mutex> lock(events_mutex_);
  UpdateRemoveCallback();
}

bool ContextCore::Indexed(const std::string& id) {
  std::lock_guard<std::mutex> lock(index_mutex_);
  return index_.count(id) != 0;
}

void ContextCore::Index(SSL_SESSION* sess, bool add) {
  if (!indexed()) return;
  unsigned int len = 0;
  const unsigned char* id = SSL_SESSION_get_id(sess, &len);
  std::string key(reinterpret_cast<const char*>(id), len);
  std::lock_guard<std::mutex> lock(index_mutex_);
  if (add) {
    index_[key] = sess;
  } else {
    auto it = index_.find(key);
    if (it != index_.end() && it->second == sess) index_.erase(it);
  }
}

std::vector<std::pair<std::string, std::string>> ContextCore::ExportSessions() {
  ErrorQueueGuard guard;
  std::vector<std::pair<std::string, std::string>> out;
  long now = static_cast<long>(time(nullptr));
  std::lock_guard<std::mutex> lock(index_mutex_);
  for (const auto& [id, sess] : index_) {
    if (SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) <= now) continue;
    int len = i2d_SSL_SESSION(sess, nullptr);
    if (len <= 0) continue;
    std::string der(static_cast<size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(&der[0]);
    if (i2d_SSL_SESSION(sess, &p) == len) out.emplace_back(id, std::move(der));
  }
  return out;
}

bool ContextCore::ImportSession(SSL_SESSION* sess) {
  unsigned int len = 0;
  const unsigned char* id = SSL_SESSION_get_id(sess, &len);
  unsigned int ctx_len = 0;
  const unsigned char* sid_ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
  std::string ctx(reinterpret_cast<const char*>(sid_ctx), ctx_len);
  // A session of any host name of this context (they all live in this cache), under its own name's rules.
  if (!KnownSessionIdContext(ctx)) return false;
  return AddStoredSession(sess, std::string(reinterpret_cast<const char*>(id), len), ctx);
}

// The session a ClientHello offers for stateful resumption: the TLS 1.3 PSK identity (OpenSSL 3 sends
// the session id as the ticket when tickets are off) when TLS 1.3 will be negotiated, else the TLS 1.2
// session id. TLS 1.3 clients also send a random legacy session id, which is never a session: looking
// it up would cost every full TLS 1.3 handshake a store round trip. Empty: nothing to look up.
std::string OfferedSessionId(SSL* ssl, bool* tls13) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  *tls13 = false;
  int max = SSL_get_max_proto_version(ssl);
  if ((max == 0 || max >= TLS1_3_VERSION) &&
      SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) == 1 && len >= 1 && p[0] + 1u <= len) {
    for (size_t i = 1; i + 1 < 1u + p[0]; i += 2) {
      if (p[i] == 0x03 && p[i + 1] == 0x04) *tls13 = true;
    }
  }
  if (*tls13) {
    // pre_shared_key: u16 identities length, then u16 identity length, identity, u32 age.
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &len) != 1 || len < 4) return {};
    size_t id_len = (static_cast<size_t>(p[2]) << 8) | p[3];
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH || 4 + id_len > len) return {};  // a stateless ticket
    return std::string(reinterpret_cast<const char*>(p + 4), id_len);
  }
  len = SSL_client_hello_get0_session_id(ssl, &p);
  return std::string(reinterpret_cast<const char*>(p), len);
}

std::string OfferedServerName(SSL* ssl) {
  // server_name (RFC 6066): u16 list length, then u8 name type (0: host_name), u16 length, name.
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5) return {};
  size_t list = (static_cast<size_t>(p[0]) << 8) | p[1];
  if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name) return {};
  size_t name_len = (static_cast<size_t>(p[3]) << 8) | p[4];
  if (name_len == 0 || name_len > TLSEXT_MAXLEN_host_name || 5 + name_len != len) return {};
  std::string name(reinterpret_cast<const char*>(p + 5), name_len);
  if (name.find('\0') != std::string::npos) return {};
  return name;
}

int ContextCore::OnClientHello(SSL* ssl, int* al, void*) {
  // The engine decides (SNI, then the store): the SSL may have switched to a host name's context by the
  // time OpenSSL calls this again, so nothing here may depend on which context's callback this is.
  auto* observer = static_cast<SessionObserver*>(SSL_get_app_data(ssl));
  return observer != nullptr ? observer->OnClientHello(ssl, al) : SSL_CLIENT_HELLO_SUCCESS;
}

bool ContextCore::AddStoredSession(SSL_SESSION* sess, const std::string& id, const std::string& expected_sid_ctx) {
  unsigned int len = 0;
  const unsigned char* sid = SSL_SESSION_get_id(sess, &len);
  unsigned int ctx_len = 0;
  const unsigned char* sid_ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
  int version = SSL_SESSION_get_protocol_version(sess);
  bool fits = std::string(reinterpret_cast<const char*>(sid), len) == id &&
              std::string(reinterpret_cast<const char*>(sid_ctx), ctx_len) == expected_sid_ctx &&
              (version == TLS1_2_VERSION || version == TLS1_3_VERSION) && SSL_SESSION_is_resumable(sess) == 1 &&
              SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) > static_cast<long>(time(nullptr));
  if (!fits) return false;
  if (SSL_CTX_add_session(ctx_.get(), sess) != 1) return false;
  MarkCached(sess, true);
  Index(sess, true);
  return true;
}

std::vector<SessionEvent> ContextCore::TakeEvents(SinkId id) {
  std::lock_guard<std::mutex> lock(events_mutex_);
  std::vector<SessionEvent> out;
  for (Sink& sink : sinks_) {
    if (sink.id == id) out.swap(sink.events);
  }
  return out;
}

int ContextCore::OnNewSession(SSL* ssl, SSL_SESSION* sess) {
  MarkCached(sess, true);  // called after SSL_CTX_add_session
  // The cache is the listening context's (session_ctx), also after a switch to a host name's context.
  auto* observer = static_cast<SessionObserver*>(SSL_get_app_data(ssl));
  ContextCore* self = observer != nullptr ? observer->CacheOwner() : From(SSL_get_SSL_CTX(ssl));
  if (self != nullptr) self->Index(sess, true);
  if (observer != nullptr) observer->OnSessionCached(sess);
  if (self != nullptr) self->Queue(SessionEventType::kAdded, sess);
  return 0;  // the internal cache keeps its own reference; we take none
}

void ContextCore::OnRemoveSession(SSL_CTX* ctx, SSL_SESSION* sess) {
  if (!IsCached(sess)) return;  // was not in the cache
  MarkCached(sess, false);
  ContextCore* self = From(ctx);
  if (self == nullptr) return;
  self->Index(sess, false);
  self->Queue(SessionEventType::kRemoved, sess);
}

void ContextCore::Queue(SessionEventType type, SSL_SESSION* sess) {
  if (sink_count_.load(std::memory_order_relaxed) == 0) return;  // the common case: nobody listens
  unsigned int len = 0;
  const unsigned char* id = SSL_SESSION_get_id(sess, &len);
  QueueId(type, std::string(reinterpret_cast<const char*>(id), len));
}

void ContextCore::QueueId(SessionEventType type, std::string id) {
  std::lock_guard<std::mutex> lock(events_mutex_);
  for (Sink& sink : sinks_) {
    bool was_empty = sink.events.empty();
    sink.events.push_back({type, id});
    if (was_empty) sink.notify();
  }
}

}  // namespace osc
