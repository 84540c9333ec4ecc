/**
 * openssl-session-cache: TLS servers on the OpenSSL inside node, with OpenSSL's own SSL_CTX
 * server-side session cache.
 */
import binding from './binding';

export { SecureContext } from './context';
export type {
  SecureContextOptions,
  CacheStats,
  TLSVersion,
  PEM,
  SecureContextEvents,
  SharedContextHandle,
} from './context';
export { TLSConnection, ShutdownFlags, isTLSConnection } from './connection';
export type {
  CloseInfo,
  CloseEnding,
  SessionDetails,
  UncleanClosePolicy,
  SecureTLSConnection,
  TLSConnectionEvents,
} from './connection';
export type { EventMap, EventName, Listener, EmitterEvents, TypedEventEmitter } from './events';
export { wrap } from './wrap';
export { RedisStore } from './store';
export type { SessionStore, StoreStats, RedisLikeClient } from './store';
export { Server } from './server';
export type {
  ServerOptions,
  ListenOptions,
  ServerStats,
  AddressInfo,
  ClientInfo,
  ServerEvents,
  ConnectionListener,
} from './server';
export { createServer } from './create-server';
export { createHttpsServer } from './https';
export type { HttpsServer, HttpsServerOptions, HttpsRequestListener } from './https';
export { ThreadedServer } from './threads';
export type { ThreadedServerOptions, ThreadedServerEvents } from './threads';
export type { WrapOptions } from './wrap';
export { generateCertificate } from './certificate';
export type { CertificateOptions, GeneratedCertificate } from './certificate';
export { TLSError, SystemError } from './errors';
export type { TLSErrorCode } from './errors';

/** Version text of the OpenSSL the addon runs on: the one inside this node process. */
export const opensslVersion: string = binding.opensslVersion;
