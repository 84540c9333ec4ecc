// Self-signed (or issuer-signed) certificates generated in memory, for demos and tests.
#pragma once

#include <napi.h>

namespace osc {

// generateCertificate({ keyType, bits, curve, commonName, altNames, days, isCA, issuerCert, issuerKey })
//   -> { cert, key } (PEM)
Napi::Value GenerateCertificate(const Napi::CallbackInfo& info);

}  // namespace osc
