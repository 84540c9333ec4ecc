// createServer: one thread (Server) or N threads on one port with one cache (ThreadedServer).
import { ConnectionListener, Server, ServerOptions } from './server';
import { ThreadedServer, ThreadedServerOptions } from './threads';

/**
 * Creates a native TLS server (see {@link Server}); with `threads` and `handler`, one port served by that
 * many worker threads sharing one session cache (see {@link ThreadedServer}).
 *
 * @example
 * const server = createServer({ certFile: 'cert.pem', keyFile: 'key.pem' }, (conn) => conn.pipe(conn));
 * server.listen(4433, () => console.log('listening', server.address()));
 *
 * @example
 * // every core, one cache: handler.js exports default (conn) => ...
 * createServer({ certFile, keyFile, threads: os.availableParallelism(), handler: new URL('./handler.js', import.meta.url) }).listen(443);
 */
export function createServer(options: ThreadedServerOptions): ThreadedServer;
export function createServer(options?: ServerOptions, listener?: ConnectionListener): Server;
export function createServer(
  options?: ServerOptions | ThreadedServerOptions,
  listener?: ConnectionListener,
): Server | ThreadedServer {
  if (options !== undefined && options !== null && 'threads' in options && options.threads !== undefined) {
    if (listener !== undefined) {
      throw new TypeError(
        'a threaded server takes its connection listener from the handler module, not as an argument',
      );
    }
    return new ThreadedServer(options as ThreadedServerOptions);
  }
  if (options !== undefined && options !== null && 'handler' in options) {
    throw new TypeError("'handler' goes with 'threads'");
  }
  return new Server(options, listener);
}
