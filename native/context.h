// The context layer: one SSL_CTX (certificates, protocol options, the internal session cache).
// Plain C++ so that every transport, and later every thread, can share it through a shared_ptr.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ssl_ptr.h"

namespace osc {

// A failure with a stable code for JS (e.g. "ERR_OSC_KEY_MISMATCH") and OpenSSL's reason as message.
class TlsError : public std::runtime_error {
 public:
  TlsError(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

enum class SessionEventType : uint8_t { kAdded = 0, kRemoved = 1 };

struct SessionEvent {
  SessionEventType type;
  std::string id;  // raw session id bytes
};

struct CacheStats {
  long number, connect, accept, accept_good, accept_renegotiate, hits, misses, timeouts, cache_full, cb_hits;
};

class ContextCore;

// Whatever owns an SSL of a ContextCore (the engine) puts one of these in the SSL's app data, to hear
// of each session its connection adds to the cache (TLS 1.3 adds one per ticket), and to decide what
// the ClientHello callback does (the host name's context, the store lookup).
class SessionObserver {
 public:
  virtual void OnSessionCached(SSL_SESSION* sess) = 0;
  // The ClientHello callback of the listening context (installed while it has a store, host names or
  // a server that asks JavaScript for them): SSL_CLIENT_HELLO_SUCCESS, _RETRY (suspended) or _ERROR.
  virtual int OnClientHello(SSL* ssl, int* alert) = 0;
  // The context whose cache the SSL's sessions live in (OpenSSL's session_ctx: the listening one, also
  // after SSL_set_SSL_CTX switched to a host name's context).
  virtual ContextCore* CacheOwner() = 0;
  // The OCSP response to staple, when the owner decided it (the OCSPRequest event): true, and `out` set
  // (empty: staple nothing). False: the context's static response applies.
  virtual bool StapledResponse(std::string* out) = 0;
  // A line of the NSS key log (no newline), while the context's keylog callback is on (KeylogRef).
  virtual void OnKeylog(const char* line) = 0;

 protected:
  ~SessionObserver() = default;
};

class ContextCore {
 public:
  ContextCore();  // throws TlsError
  ~ContextCore();
  ContextCore(const ContextCore&) = delete;
  ContextCore& operator=(const ContextCore&) = delete;

  SSL_CTX* ctx() const { return ctx_.get(); }

  // Configuration; each throws TlsError with OpenSSL's reason.
  void UseCertificateChain(const std::string& pem);
  // `check`: the key must match the certificate set last (one certificate). With several certificates
  // (one per key type, as node:tls takes arrays), each key goes to the certificate of its type, and
  // CheckKeyPairs() then checks that every certificate got its key.
  void UsePrivateKey(const std::string& pem, const std::string& passphrase, bool check = true);
  void CheckKeyPairs(size_t certificates);
  void AddTrustedCertificates(const std::string& pem);
  void SetVerify(bool request_cert, bool reject_unauthorized);
  void SetProtocolRange(int min_version, int max_version);
  void SetCipherList(const std::string& ciphers);
  void SetCipherSuites(const std::string& suites);
  void SetAlpnProtocols(const std::string& wire);  // ALPN wire format: length-prefixed names
  void SetSessionCacheEnabled(bool enabled);
  void SetSessionCacheSize(long size);
  void SetSessionTimeout(long seconds);
  void SetTickets(bool enabled);
  void SetNumTickets(size_t n);
  void SetSessionIdContext(const std::string& sid_ctx);
  // The default session id context: a digest over the service name, the certificate, the verify mode
  // and the trusted CA names (what nginx and HAProxy derive theirs from).
  std::string DeriveSessionIdContext(const std::string& service_name) const;
  const std::string& session_id_context() const { return sid_ctx_; }

  // The internal cache.
  void FlushSessions(bool expired_only);
  bool RemoveSession(const std::string& id);

  // The second tier (a session store behind the cache, lib/store.ts). While it is on, a ClientHello
  // that offers a session the cache does not hold is suspended until the store has answered
  // (SessionObserver::OnCacheMiss).
  void SetStoreEnabled(bool on);
  bool store_enabled() const { return store_enabled_.load(std::memory_order_relaxed); }
  // Adds a session from the store to the internal cache, if OpenSSL would resume it here: the id that
  // was offered, the session id context `sid_ctx` (the host name's context's), TLS 1.2 or 1.3,
  // resumable, not expired. False: rejected.
  bool AddStoredSession(SSL_SESSION* sess, const std::string& id, const std::string& sid_ctx);
  // Every live session in the cache as (id, DER), for a warm restart (exportSessions); empty when the
  // cache is not indexed (tickets on, no store). ImportSession adds one back if it still fits.
  std::vector<std::pair<std::string, std::string>> ExportSessions();
  bool ImportSession(SSL_SESSION* sess);
  // The index of the cache (id -> session) behind the lookups and the export: kept while tickets are
  // off or a store is on (it needs the remove callback, which changes caching when tickets are on).
  bool indexed() const { return index_enabled_.load(std::memory_order_relaxed); }
  CacheStats Stats() const;
  long CacheSize() const { return SSL_CTX_sess_get_cache_size(ctx_.get()); }
  long Timeout() const { return SSL_CTX_get_timeout(ctx_.get()); }

  // Session events go to every sink (one per thread that listens: a context can be shared by several),
  // each with its own queue, filled from whatever thread runs the handshake. `notify` runs when that
  // queue goes from empty to non-empty, so a burst costs one wake-up.
  using SinkId = uint64_t;
  SinkId AddEventSink(std::function<void()> notify);
  void RemoveEventSink(SinkId id);
  std::vector<SessionEvent> TakeEvents(SinkId id);

  // Session ticket keys (tickets on): node's 48-byte layout, 16 bytes key name, 16 HMAC-SHA256 key,
  // 16 AES-128-CBC key, so that tickets are those of a node:tls server with the same keys. The
  // current key encrypts; keys it replaced still decrypt (and renew the ticket) for one session
  // lifetime after they were replaced, at most kPreviousTicketKeys of them.
  static constexpr size_t kTicketKeyLength = 48;
  static constexpr size_t kPreviousTicketKeys = 2;
  void SetTicketKeys(const std::string& keys);  // kTicketKeyLength bytes
  std::string GetTicketKeys();

  // The NSS key log: the SSL_CTX's keylog callback is set while the count is above zero (each engine
  // that collects lines holds one), and costs nothing otherwise.
  void KeylogRef(int delta);

  static ContextCore* From(SSL_CTX* ctx);

  // SNI: contexts by host name pattern (node's matching: `*` stands for any run of characters without
  // a dot, case as given; the last added pattern that matches wins). Only the listening context's names
  // are consulted. A context that has names cannot be a name's context, nor can a name's context get
  // names (so no cycle of contexts ever holds itself alive). Throws TlsError.
  void AddName(const std::string& pattern, std::shared_ptr<ContextCore> core);
  std::shared_ptr<ContextCore> FindName(const std::string& servername);
  bool has_names() const { return has_names_.load(std::memory_order_relaxed); }
  // A server that asks JavaScript for host names (SNICallback) needs the ClientHello callback.
  void EnableClientHello();
  // Whether `sid_ctx` is this context's or one of its names' (sessions of every name live in this cache).
  bool KnownSessionIdContext(const std::string& sid_ctx);
  bool Indexed(const std::string& id);

  // OCSP stapling: the DER response stapled when a client asks (status_request), unless a server's
  // OCSPRequest listener decides (SessionObserver::StapledResponse). Empty: none.
  void SetOcspResponse(std::string der);
  std::string OcspResponse();
  // The DER of the certificate's issuer, from the chain or the trusted CAs (empty if not found), as
  // node's OCSPRequest event gives it.
  std::string IssuerDer(X509* cert);

 private:
  static int OnNewSession(SSL* ssl, SSL_SESSION* sess);
  static int OnClientHello(SSL* ssl, int* al, void* arg);
  static int OnStatus(SSL* ssl, void* arg);
  void UpdateClientHello();
  void Index(SSL_SESSION* sess, bool add);
  void UpdateRemoveCallback();  // with the events lock held
  void UpdateIndexing();
  static void OnRemoveSession(SSL_CTX* ctx, SSL_SESSION* sess);
  static int OnAlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                          unsigned int inlen, void* arg);
  static int OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* ectx, EVP_MAC_CTX* hctx,
                         int enc);
  static void OnKeylog(const SSL* ssl, const char* line);
  void Queue(SessionEventType type, SSL_SESSION* sess);
  void QueueId(SessionEventType type, std::string id);

  SslCtxPtr ctx_;
  std::string alpn_;
  struct Sink {
    SinkId id;
    std::function<void()> notify;
    std::vector<SessionEvent> events;
  };
  std::mutex events_mutex_;
  std::vector<Sink> sinks_;
  std::atomic<size_t> sink_count_{0};
  std::atomic<bool> store_enabled_{false};
  std::atomic<bool> index_enabled_{true};  // tickets are off by default
  std::mutex index_mutex_;
  // The sessions in the internal cache by id: a pointer stays valid while indexed, because OpenSSL
  // frees a session only after the remove callback that takes it out of here has returned.
  std::unordered_map<std::string, SSL_SESSION*> index_;
  SinkId next_sink_ = 1;
  std::string sid_ctx_;
  struct TicketKey {
    unsigned char bytes[kTicketKeyLength];  // name, HMAC key, AES key
    time_t replaced;                        // when a newer key took over (previous keys only)
  };
  std::mutex ticket_mutex_;
  std::vector<TicketKey> ticket_keys_;  // [0] encrypts; the rest are previous keys, newest first
  std::mutex keylog_mutex_;
  int keylog_refs_ = 0;
  struct Name {
    std::string pattern;
    std::shared_ptr<ContextCore> core;
  };
  std::mutex names_mutex_;
  std::vector<Name> names_;
  std::atomic<bool> has_names_{false};
  std::atomic<bool> is_name_{false};
  std::atomic<bool> hello_forced_{false};
  std::mutex ocsp_mutex_;
  std::string ocsp_response_;
};

// What a ClientHello offers, read in the ClientHello callback (before OpenSSL parsed the extensions).
// The session for stateful resumption: the TLS 1.3 PSK identity when TLS 1.3 will be negotiated, else
// the TLS 1.2 session id (empty: none).
std::string OfferedSessionId(SSL* ssl, bool* tls13);
// The host_name of the server_name extension (empty: none, or malformed: OpenSSL refuses it later).
std::string OfferedServerName(SSL* ssl);
// node's host name pattern matching (lib/_tls_wrap.js addContext): `*` matches [^.]*, the rest exactly.
bool MatchesHostPattern(const std::string& pattern, const std::string& name);

}  // namespace osc
