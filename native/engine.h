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

// How the transport ended. The engine is never told about EOF through its BIO: OpenSSL 3 treats an
// EOF without close_notify as a fatal "unexpected eof" and removes the session before any policy
// could save it. The transport reports the ending here instead.
enum class Ending : uint8_t { kEof = 0, kReset = 1, kError = 2, kLocal = 3 };

// Bits returned by Advance().
enum EngineEvent : unsigned {
  kHandshakeDone = 1u << 0,  // the handshake completed during this call
  kPlaintext = 1u << 1,      // plaintext() has data
  kPeerClosed = 1u << 2,     // close_notify received; answer with Shutdown()
  kFatal = 1u << 3,          // TLS failure; error() says why, alert (if any) is in the ciphertext
  kCiphertext = 1u << 4,     // ciphertext is waiting to be sent
};

struct SessionInfo {
  std::string id;  // raw bytes
  bool reused = false;
  std::string protocol, cipher, alpn, servername;
  std::string peer_certificate;  // DER, empty if none
  long verify_result = X509_V_OK;
};

class Engine {
 public:
  Engine(std::shared_ptr<ContextCore> context, UncleanPolicy policy);  // throws TlsError
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Buffers ciphertext from the peer; Advance() consumes it.
  void Receive(const char* data, size_t len);
  // Drives the handshake, then decrypts everything buffered into plaintext(). Returns EngineEvent bits.
  // Transports apply backpressure at the socket: a paused reader stops reading ciphertext.
  unsigned Advance();
  // Encrypts application data (only after the handshake). False with error() on failure.
  bool Write(const char* data, size_t len);
  // Sends close_notify (SSL_shutdown). Non-blocking by construction: the alert lands in the write BIO.
  unsigned Shutdown();
  // SSL_set_shutdown: mark the connection shut down as far as the session cache is concerned.
  void SetShutdownFlags(int flags);
  // The transport has ended: apply the policy to the session and free the SSL. Idempotent.
  void Finish(Ending how);

  // Ciphertext to send: the transport writes straight from it, then Reset()s it or moves it away.
  Bytes& ciphertext() { return out_; }
  size_t PendingCiphertext() const { return out_.size(); }
  Bytes& plaintext() { return plaintext_; }

  bool finished() const { return !ssl_; }
  bool peer_closed() const { return peer_closed_; }   // close_notify received
  int shutdown_flags() const;
  const std::string& error() const { return error_; }
  // The session as negotiated, captured when the handshake completed (valid after Finish()).
  const SessionInfo& session() const { return session_; }

  // Called by the context's new-session callback: remember sessions this connection added to the
  // cache, so the "drop" policy can remove every one (TLS 1.3 adds one per ticket).
  static void OnSessionCached(SSL* ssl, SSL_SESSION* sess);

 private:
  unsigned Fail(unsigned events, const char* fallback);
  unsigned ReadPlaintext(unsigned events);
  SessionInfo Info() const;

  std::shared_ptr<ContextCore> context_;
  SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_ (a memory BIO)
  Bytes out_;            // what SSL writes to its write BIO (appends here: no copy out of a BIO)
  UncleanPolicy policy_;
  std::vector<SessionPtr> added_sessions_;
  Bytes plaintext_;
  SessionInfo session_;
  std::string error_;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool sent_close_ = false;
  bool fatal_ = false;
};

}  // namespace osc
