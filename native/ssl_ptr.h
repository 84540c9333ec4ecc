// One owner per OpenSSL object: unique_ptr aliases with the matching free function.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

namespace osc {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};

template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

inline void FreeBio(BIO* b) { BIO_free_all(b); }
inline void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }

using SslCtxPtr = Owned<SSL_CTX, SSL_CTX_free>;
using SslPtr = Owned<SSL, SSL_free>;
using SessionPtr = Owned<SSL_SESSION, SSL_SESSION_free>;
using BioPtr = Owned<BIO, FreeBio>;
using X509Ptr = Owned<X509, X509_free>;
using PkeyPtr = Owned<EVP_PKEY, EVP_PKEY_free>;
using X509StackPtr = Owned<STACK_OF(X509), FreeX509Stack>;
using MdCtxPtr = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;

}  // namespace osc
