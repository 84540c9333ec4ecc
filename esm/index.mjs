// The ES module entry of openssl-session-cache: the CommonJS build's exports under their own names, so
// `import` and `require()` share one instance of the package (one addon, one set of classes).
import cjs from '../dist/index.js';

export const {
  SecureContext,
  TLSConnection,
  isTLSConnection,
  ShutdownFlags,
  wrap,
  RedisStore,
  Server,
  createServer,
  createHttpsServer,
  ThreadedServer,
  generateCertificate,
  TLSError,
  SystemError,
  opensslVersion,
} = cjs;
export default cjs;
