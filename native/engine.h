// The connection engine: one server-side SSL over memory BIOs. Ciphertext in, plaintext out,
// plaintext in, ciphertext out. It never touches a socket and never blocks, so every transport
// (the native TCP server, a JS Duplex) drives the same state machine.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "bytes.h"
#include "context.h"
#include "ssl_ptr.h"

namespace osc {

// What to do with the session when the peer goes away without close_notify.
enum class UncleanPolicy : uint8_t { kKeep = 0, kDrop = 1 };

// What the transport saw of its own end. The engine is never told about EOF through its BIO: OpenSSL 3
// treats an EOF without close_notify as a fatal "unexpected eof" and removes the session before any
// policy could save it. The transport reports it here instead, and Finish() decides what it means.
enum class TransportEnd : uint8_t {
  kEof = 0,      // the peer sent FIN
  kError = 1,    // a socket error; its code (e.g. "ECONNRESET") says which
  kTimeout = 2,  // the handshake did not finish in time
  kLocal = 3,    // this side tore the connection down (destroy, server close, process exit)
};

// How a connection ended, as the JS API reports it (CloseEnding in lib/connection.ts).
enum class Ending : uint8_t { kCloseNotify = 0, kEof = 1, kReset = 2, kError = 3, kLocal = 4 };

// The verdict on a finished connection: the one place that decides the ending, whether it was clean,
// and, for a failure, its stable code and reason. Both transports report exactly this.
struct Outcome {
  Ending ending = Ending::kLocal;
  bool clean = false;  // close_notify went either way
  bool handshake_done = false;
  std::string code;  // ERR_OSC_HANDSHAKE / _TIMEOUT / ERR_OSC_TLS, or a socket error's code; empty: no failure
  std::string reason;
};

// Bits returned by Advance().
enum EngineEvent : unsigned {
  kHandshakeDone = 1u << 0,  // the handshake completed during this call
  kPlaintext = 1u << 1,      // plaintext() has data
  kPeerClosed = 1u << 2,     // close_notify received; answer with Shutdown()
  kFatal = 1u << 3,          // TLS failure; error() says why, alert (if any) is in the ciphertext
  kCiphertext = 1u << 4,     // ciphertext is waiting to be sent
  kLookup = 1u << 5,         // the handshake waits for the store: lookup_id(), then ResolveLookup()
  kStoreWork = 1u << 6,      // sessions to write to the store or delete from it: TakeStoreWork()
  kServername = 1u << 7,     // the handshake waits for JS to pick the host name's context: ResolveServername()
  kOcsp = 1u << 8,           // the handshake waits for JS's OCSP response: ocsp_certificate(), ResolveOcsp()
};

// What the owner asks JavaScript during the handshake (the handshake is suspended meanwhile).
enum EngineAsk : unsigned {
  kAskServername = 1u << 0,  // SNICallback: the context for the ClientHello's host name
  kAskOcsp = 1u << 1,        // OCSPRequest: the response to staple, when the client asks for one
};

// Ciphertext from the peer as OpenSSL reads it through the engine's read BIO: during Feed() straight from
// the transport's buffer (no copy), and whatever OpenSSL left unread (a handshake waiting for the store)
// kept until the next call.
class Inbox {
 public:
  // Up to `len` bytes into `out`: the kept ones first, then the borrowed span. 0: nothing (yet).
  size_t Read(char* out, size_t len);
  size_t pending() const { return kept_.size() - kept_off_ + span_len_; }
  void Keep(const char* data, size_t len) { kept_.Append(data, len); }
  void Borrow(const char* data, size_t len) {
    span_ = data;
    span_len_ = len;
  }
  // The borrowed span goes back to its owner: what OpenSSL did not read of it is copied.
  void Return() {
    if (span_len_ > 0) kept_.Append(span_, span_len_);
    span_ = nullptr;
    span_len_ = 0;
  }

 private:
  Bytes kept_;
  size_t kept_off_ = 0;
  const char* span_ = nullptr;
  size_t span_len_ = 0;
};

// A session for the store (write-behind): its id, DER and remaining lifetime.
struct StoreWrite {
  std::string id;
  std::string der;
  long ttl_seconds;
};

struct SessionInfo {
  std::string id;  // raw bytes
  bool reused = false;
  std::string protocol, cipher, alpn, servername;
  std::string cipher_standard_name;  // IANA name, as node's getCipher().standardName
  bool cert_requested = false;       // the server asked for a client certificate
  std::string peer_certificate;      // DER, empty if none
  long verify_result = X509_V_OK;
};

class Engine final : public SessionObserver {
 public:
  // `ask`: EngineAsk bits.
  Engine(std::shared_ptr<ContextCore> context, UncleanPolicy policy, unsigned ask = 0);  // throws TlsError
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Buffers ciphertext from the peer (a copy); Advance() consumes it.
  void Receive(const char* data, size_t len);
  // Receive() + Advance() without the copy: OpenSSL reads straight from `data`, and only what it leaves
  // unread (a handshake suspended for the store) is kept. The transports' path.
  unsigned Feed(const char* data, size_t len);
  // Drives the handshake, then decrypts everything buffered into plaintext(). Returns EngineEvent bits.
  // Transports apply backpressure at the socket: a paused reader stops reading ciphertext.
  unsigned Advance();
  // Encrypts application data (only after the handshake). False with error() on failure.
  bool Write(const char* data, size_t len);
  // Sends close_notify (SSL_shutdown). Non-blocking by construction: the alert lands in the write BIO.
  unsigned Shutdown();
  // The store's answer to kLookup: the session's DER, or null for none (a miss, an error, a timeout, a
  // blob that did not decrypt). Adds it to the internal cache when it belongs there (true), and goes on
  // with the handshake either way: the events of that.
  unsigned ResolveLookup(const unsigned char* der, size_t len, bool* accepted);
  const std::string& lookup_id() const { return lookup_id_; }
  bool lookup_pending() const { return lookup_pending_; }
  // Waits for any answer (the store, a host name's context, an OCSP response).
  bool waiting() const { return lookup_pending_ || sni_ == Step::kPending || ocsp_ == Step::kPending; }
  // SNI: the host name the ClientHello asked for (kServername); the answer is the context to use (null:
  // the listening one), or `error` to fail the handshake with that reason. The events of going on.
  const std::string& servername() const { return servername_; }
  // What to ask JS from now on (EngineAsk bits); the host name is asked only before the ClientHello came.
  void set_ask(unsigned ask);
  unsigned ResolveServername(std::shared_ptr<ContextCore> context, const std::string* error);
  // OCSP: the certificate (DER) to answer for and its issuer (DER, empty if unknown), after kOcsp; the
  // answer is the DER response (empty: none) or `error` to fail the handshake.
  const std::string& ocsp_certificate() const { return ocsp_cert_; }
  const std::string& ocsp_issuer() const { return ocsp_issuer_; }
  unsigned ResolveOcsp(const std::string& response, const std::string* error);
  // What the store must hear of: new sessions, and ids that left the cache for good (remove by the
  // drop policy, a fatal error). Empty unless the context has a store.
  void TakeStoreWork(std::vector<StoreWrite>* writes, std::vector<std::string>* deletes);
  bool has_store_work() const { return !store_writes_.empty() || !store_deletes_.empty(); }

  // SSL_set_shutdown: mark the connection shut down as far as the session cache is concerned. Only
  // SSL_SENT_SHUTDOWN and SSL_RECEIVED_SHUTDOWN are taken; other bits are ignored.
  void SetShutdownFlags(int flags);
  // The transport has ended (or a TLS failure ended it: `how` is then ignored). Decides the outcome,
  // applies the unclean-close policy to the session and frees the SSL. The first call decides; later
  // calls return the same outcome. `sys_code` names the socket error of TransportEnd::kError.
  const Outcome& Finish(TransportEnd how, const char* sys_code = nullptr);

  // Ciphertext to send: the transport writes straight from it, then Reset()s it or moves it away.
  Bytes& ciphertext() { return out_; }
  size_t PendingCiphertext() const { return out_.size(); }
  Bytes& plaintext() { return plaintext_; }

  bool finished() const { return !ssl_; }
  bool peer_closed() const { return peer_closed_; }  // close_notify received
  int shutdown_flags() const;
  const std::string& error() const { return error_; }
  // The session as negotiated, captured when the handshake completed (valid after Finish()).
  const SessionInfo& session() const { return session_; }

  const Outcome& outcome() const { return outcome_; }

  // Live facts of the connection, as tls.TLSSocket reports them (empty once finished).
  std::string SessionDer() const;      // the current session, DER (getSession)
  std::string CertificateDer() const;  // the certificate this side presented, DER (getCertificate)
  // RFC 5705 keying material; false when the connection is gone or OpenSSL refuses.
  bool ExportKeyingMaterial(size_t length, const std::string& label, const std::string* context,
                            std::string* out) const;
  std::string Finished(bool peer) const;                       // the last Finished message sent / received
  std::vector<std::string> SharedSignatureAlgorithms() const;  // node's names, e.g. "ECDSA+SHA256"

  // Remembers the sessions this connection added to the cache, so that the "drop" policy can remove
  // every one (TLS 1.3 adds one per ticket).
  void OnSessionCached(SSL_SESSION* sess) override;
  int OnClientHello(SSL* ssl, int* alert) override;
  ContextCore* CacheOwner() override { return context_.get(); }
  bool StapledResponse(std::string* out) override;
  void OnKeylog(const char* line) override;

  // Collects this connection's NSS key log lines (each with its newline) while on; holds the context's
  // keylog callback on meanwhile. Off again at Finish().
  void SetKeylog(bool on);
  bool has_keylog() const { return !keylog_lines_.empty(); }
  std::vector<std::string> TakeKeylog() { return std::move(keylog_lines_); }

 private:
  enum class Step : uint8_t { kNone, kPending, kAnswered, kDone };
  static int OnCertificate(SSL* ssl, void* arg);
  // Switches the SSL to a host name's context: its certificates, client-certificate rules, protocol
  // range and session id context (so a session never resumes under another name's rules). Sessions
  // stay in the listening context's cache (OpenSSL's session_ctx).
  void UseContext(SSL* ssl, std::shared_ptr<ContextCore> context);
  void Decide(TransportEnd how, const char* sys_code);
  unsigned Fail(unsigned events, const char* fallback);
  unsigned ReadPlaintext(unsigned events);
  SessionInfo Info() const;

  std::shared_ptr<ContextCore> context_;    // the listening context: its cache holds the sessions
  std::shared_ptr<ContextCore> active_;     // the host name's context the SSL switched to, if any
  std::shared_ptr<BIO_METHOD> out_method_;  // outlives ssl_ (declared before it)
  std::shared_ptr<BIO_METHOD> in_method_;   // likewise
  Inbox in_;                                // what SSL reads from its read BIO (declared before ssl_)
  Bytes out_;                               // what SSL writes to its write BIO (appends here: no copy out of a BIO)
  SslPtr ssl_;
  UncleanPolicy policy_;
  std::vector<SessionPtr> added_sessions_;
  Bytes plaintext_;
  SessionInfo session_;
  std::string error_;
  Outcome outcome_;
  std::string lookup_id_;  // the session id the store is asked for
  bool lookup_pending_ = false;
  bool lookup_done_ = false;  // asked once: a second ClientHello callback goes on
  unsigned ask_ = 0;
  Step sni_ = Step::kNone;
  std::string servername_;
  std::shared_ptr<ContextCore> sni_answer_;
  Step ocsp_ = Step::kNone;
  std::string ocsp_cert_, ocsp_issuer_, ocsp_response_;
  std::string abort_reason_;  // JS failed the handshake (SNICallback or OCSPRequest error)
  std::vector<StoreWrite> store_writes_;
  std::vector<std::string> store_deletes_;
  std::vector<std::string> keylog_lines_;
  bool keylog_ = false;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool peer_closed_first_ = false;  // the peer's close_notify was not an answer to ours
  bool sent_close_ = false;
  bool fatal_ = false;
};

}  // namespace osc
