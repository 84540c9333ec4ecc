#include "certgen.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <string>

#include "binding_util.h"
#include "errors.h"
#include "ssl_ptr.h"

namespace osc {

namespace {

using ExtPtr = Owned<X509_EXTENSION, X509_EXTENSION_free>;

[[noreturn]] void Fail(const char* what) { throw TlsError("ERR_OSC_CERTGEN", TakeOpenSslError(what)); }

PkeyPtr MakeKey(const std::string& type, int bits, const std::string& curve) {
  EVP_PKEY* key = type == "rsa" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits))
                                : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.c_str());
  if (key == nullptr) Fail("key generation failed");
  return PkeyPtr(key);
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) Fail("bad certificate extension");
}

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) Fail("PEM");
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, n);
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) Fail("PEM");
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, n);
}

}  // namespace

Napi::Value GenerateCertificate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  ErrorQueueGuard guard;
  try {
    PkeyPtr key = MakeKey(BytesOf(o.Get("keyType")), o.Get("bits").ToNumber().Int32Value(), BytesOf(o.Get("curve")));
    X509Ptr cert(X509_new());
    if (!cert) Fail("out of memory");
    X509_set_version(cert.get(), X509_VERSION_3);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) Fail("no randomness");
    serial[0] &= 0x7f;  // positive
    Owned<BIGNUM, BN_free> bn(BN_bin2bn(serial, sizeof serial, nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) Fail("serial");
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_time_adj_ex(X509_getm_notAfter(cert.get()), o.Get("days").ToNumber().Int32Value(), 0, nullptr);
    X509_NAME* name = X509_get_subject_name(cert.get());
    std::string cn = BytesOf(o.Get("commonName"));
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
    if (X509_set_pubkey(cert.get(), key.get()) != 1) Fail("public key");

    // Signed by an issuer when one is given, otherwise by its own key.
    X509Ptr issuer_cert;
    PkeyPtr issuer_key;
    if (o.Has("issuerCert") && o.Get("issuerCert").IsString()) {
      std::string ic = BytesOf(o.Get("issuerCert"));
      std::string ik = BytesOf(o.Get("issuerKey"));
      BioPtr cb(BIO_new_mem_buf(ic.data(), static_cast<int>(ic.size())));
      BioPtr kb(BIO_new_mem_buf(ik.data(), static_cast<int>(ik.size())));
      if (cb) issuer_cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
      if (kb) issuer_key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
      if (!issuer_cert || !issuer_key) Fail("bad issuer certificate or key");
    }
    X509* signer = issuer_cert ? issuer_cert.get() : cert.get();
    if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) Fail("issuer name");

    bool is_ca = o.Get("isCA").ToBoolean().Value();
    AddExtension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_key_usage,
                 is_ca ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature,keyEncipherment");
    if (!is_ca) AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
    std::string alt = BytesOf(o.Get("altNames"));
    if (!alt.empty()) AddExtension(cert.get(), signer, NID_subject_alt_name, alt);

    if (X509_sign(cert.get(), issuer_key ? issuer_key.get() : key.get(), EVP_sha256()) <= 0) Fail("signing");
    Napi::Object out = Napi::Object::New(env);
    out.Set("cert", CertPem(cert.get()));
    out.Set("key", KeyPem(key.get()));
    return out;
  } catch (const TlsError& e) {
    throw ToJsError(env, e);
  }
}

}  // namespace osc
