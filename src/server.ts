/**
 * {@link Server}: listening, serving connections, closing and draining.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type ssh2 from 'ssh2';
import { Connection, type ServerInternals } from './connection.js';
import type { ConnectionContext, Context } from './context.js';
import { ConnectionRefusedError, HookError, InvalidOptionError, ServerClosedError } from './errors.js';
import type { Handler, Middleware, ServerConfig } from './hooks.js';
import { generateHostKey, loadHostKey, type HostKey } from './host-keys.js';
import { compose } from './middleware.js';
import { DEFAULTS, parseAddr, validateOptions, type ServerOptions } from './options.js';
import { Admission, parseMaxStartups } from './limits.js';
import { ProxyProtocolError, readProxyHeader, trustCheck, type ProxyHeader } from './proxy-protocol.js';
import { connectionStream, createSsh2Server, type Ssh2Connection } from './internal/ssh2-compat.js';

/** Distinct algorithm configurations kept ready at once (from `serverConfigCallback`). */
const MAX_CONFIGS = 32;

/** The events a {@link Server} emits. */
export type ServerEvents = {
  /** A listener is bound. */
  listening: [];
  /** A client sent its identification; the SSH handshake follows. */
  connection: [ctx: Context];
  /** A hook failed, a handler threw, or a listener failed; `err.context` is set when a connection is known. */
  error: [err: Error];
  /** `close()` or `shutdown()` finished. */
  close: [];
};

/**
 * An SSH server. Create it with options, give it a handler, and listen.
 *
 * @example
 * ```ts
 * const server = new Server({ passwordHandler: (ctx, pw) => pw === 'secret' });
 * server.handle(async (s) => { s.write(`hello ${s.user}\n`); });
 * await server.listen(2222, '127.0.0.1');
 * ```
 */
export class Server extends EventEmitter<ServerEvents> {
  private readonly options: ServerOptions;
  private hostKeys: HostKey[];
  private baseHandler: Handler | undefined;
  private readonly middleware: Middleware[] = [];
  private composed: Handler | undefined;
  private readonly ssh2Servers = new Map<string, ssh2.Server>();
  private readonly listeners_ = new Set<NetServer>();
  private readonly connections = new Set<Connection>();
  private readonly pending = new WeakMap<Duplex, Connection>();
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private readonly internals: ServerInternals;
  private readonly admission: Admission;
  /** Sockets whose PROXY header is still being read. */
  private readonly awaitingHeader = new Set<Duplex>();
  private readonly trustedProxy: ((address: string) => boolean) | undefined;

  /** Validates `options` (throws `InvalidOptionError` naming the bad one) and loads host keys. */
  constructor(options?: ServerOptions) {
    super();
    this.options = { ...validateOptions(options) };
    this.baseHandler = this.options.handler;
    try {
      this.hostKeys = (this.options.hostKeys ?? []).map((k) => loadHostKey(k));
    } catch (err) {
      throw new InvalidOptionError('hostKeys', err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (this.hostKeys.length === 0) this.hostKeys.push(generateHostKey());
    this.hostKeys = dedupeByType(this.hostKeys);
    const o = this.options;
    this.admission = new Admission(
      o.maxConnections ?? DEFAULTS.maxConnections,
      parseMaxStartups(o.maxStartups ?? DEFAULTS.maxStartups),
      o.perSourceMaxStartups ?? Infinity,
      o.penalties ?? {},
    );
    if (o.proxyProtocol) {
      this.trustedProxy = trustCheck(typeof o.proxyProtocol === 'object' ? o.proxyProtocol.trusted : undefined);
    }
    const self = this;
    this.internals = {
      admission: this.admission,
      server: this,
      options: this.options,
      version: this.options.version ?? DEFAULTS.version,
      handler: () => self.handler(),
      report: (err, ctx) => self.report(err, ctx),
      inject: (stream, connection, ctx) => self.inject(stream, connection, ctx),
    };
  }

  /** Sets the session handler (replacing `options.handler`). */
  handle(handler: Handler): void {
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', 'must be a function');
    this.baseHandler = handler;
    this.composed = undefined;
  }

  /** Adds middleware around the handler; the first added is outermost. */
  use(...middleware: Middleware[]): this {
    for (const m of middleware) {
      if (typeof m !== 'function') throw new InvalidOptionError('middleware', 'must be a function');
    }
    this.middleware.push(...middleware);
    this.composed = undefined;
    return this;
  }

  /** Adds a host private key (PEM or OpenSSH); it replaces a key of the same type. */
  addHostKey(key: string | Buffer): void {
    const loaded = loadHostKey(key);
    this.hostKeys = [...this.hostKeys.filter((k) => k.type !== loaded.type), loaded];
    this.ssh2Servers.clear();
  }

  /** The SSH types of the host keys in use, e.g. `["ssh-ed25519"]`. */
  get hostKeyTypes(): string[] {
    return this.hostKeys.map((k) => k.type);
  }

  /** Listens on `port` (0 = ephemeral) and `host`; resolves once bound. */
  async listen(port = 0, host?: string): Promise<AddressInfo> {
    if (this.closed) throw new ServerClosedError();
    const net = createServer((socket) => this.handleConnection(socket));
    await new Promise<void>((resolve, reject) => {
      net.once('error', reject);
      net.listen(port, host, () => {
        net.off('error', reject);
        resolve();
      });
    });
    if (this.closed) {
      // close()/shutdown() ran while binding: do not leave a listener nobody will close.
      net.close();
      throw new ServerClosedError();
    }
    this.adopt(net);
    this.emit('listening');
    return net.address() as AddressInfo;
  }

  /** Listens on `options.addr` (default `":22"`). */
  listenAndServe(): Promise<AddressInfo> {
    const { host, port } = parseAddr(this.options.addr ?? DEFAULTS.addr);
    return this.listen(port, host);
  }

  /** Serves connections accepted by a listener the caller made. */
  serve(listener: NetServer): void {
    if (this.closed) throw new ServerClosedError();
    listener.on('connection', (socket) => this.handleConnection(socket));
    this.adopt(listener);
  }

  /** Serves one already-accepted transport (a socket, or any Duplex). */
  handleConnection(socket: Duplex): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.trustedProxy) {
      this.acceptProxied(socket, this.trustedProxy);
      return;
    }
    this.admit(socket, undefined);
  }

  /** Reads a PROXY header first (the `proxyProtocol` option); drops the socket without one. */
  private acceptProxied(socket: Duplex, trusted: (address: string) => boolean): void {
    const peer = (socket as { remoteAddress?: string }).remoteAddress ?? '';
    const drop = (err: Error): void => {
      socket.on('error', () => undefined);
      socket.destroy();
      const cb = this.options.connectionFailedCallback;
      try {
        cb?.(socket, err);
      } catch (e) {
        this.report(new HookError('connectionFailedCallback', e));
      }
    };
    if (!trusted(peer)) return drop(new ProxyProtocolError(`${peer} is not a trusted proxy`));
    const pp = this.options.proxyProtocol;
    const timeout = (typeof pp === 'object' ? pp.timeout : undefined) ?? 10_000;
    socket.on('error', () => undefined);
    this.awaitingHeader.add(socket);
    readProxyHeader(socket, timeout).then(
      (header) => {
        this.awaitingHeader.delete(socket);
        if (this.closed) socket.destroy();
        else this.admit(socket, header);
      },
      (err: Error) => {
        this.awaitingHeader.delete(socket);
        drop(err);
      },
    );
  }

  /** Admission control, then a Connection. */
  private admit(socket: Duplex, header: ProxyHeader | undefined): void {
    const s = socket as { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number };
    const addr =
      header?.command === 'PROXY'
        ? {
            remoteAddress: header.sourceAddress,
            remotePort: header.sourcePort,
            localAddress: header.destinationAddress,
            localPort: header.destinationPort,
          }
        : { remoteAddress: s.remoteAddress, remotePort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort };
    const raw = addr.remoteAddress ?? '';
    const source = raw.startsWith('::ffff:') && raw.includes('.') ? raw.slice(7) : raw;
    const refusal = this.admission.admit(source);
    if (refusal) {
      this.refuse(socket, source, refusal);
      return;
    }
    const c = new Connection(this.internals, socket, source, addr);
    this.connections.add(c);
    void c.whenClosed().then(() => this.connections.delete(c));
    c.start().catch((err: unknown) => {
      this.report(err, c.ctx);
      c.destroy();
    });
  }

  /**
   * Closes a refused socket cleanly: no SSH bytes, a FIN rather than a reset, and a bounded
   * wait for the peer's side before the socket is destroyed.
   */
  private refuse(socket: Duplex, source: string, reason: string): void {
    socket.on('error', () => undefined);
    socket.resume();
    socket.end();
    const kill = setTimeout(() => socket.destroy(), 2000);
    kill.unref();
    socket.once('close', () => clearTimeout(kill));
    const cb = this.options.connectionFailedCallback;
    if (cb) {
      try {
        cb(socket, new ConnectionRefusedError(reason));
      } catch (err) {
        this.report(new HookError('connectionFailedCallback', err));
      }
    }
  }

  /** The address of the first listener, or null. */
  address(): AddressInfo | null {
    for (const l of this.listeners_) {
      const a = l.address();
      if (a && typeof a === 'object') return a;
    }
    return null;
  }

  /** Stops listening and ends every connection now, including those still in the handshake. */
  close(): Promise<void> {
    this.stopAccepting();
    for (const s of this.awaitingHeader) s.destroy();
    for (const c of this.connections) c.destroy();
    return this.finish();
  }

  /**
   * Stops listening and waits until every connection has ended. Rejects with
   * `signal.reason` if `signal` aborts first (connections are left running; call `close()`).
   */
  async shutdown(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.stopAccepting();
    const { signal } = opts;
    if (!signal) return this.finish();
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.finish(), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private stopAccepting(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.listeners_) l.close();
  }

  private finish(): Promise<void> {
    this.closePromise ??= (async () => {
      const listenersClosed = [...this.listeners_].map(
        (l) => new Promise<void>((resolve) => (l.listening ? l.once('close', () => resolve()) : resolve())),
      );
      while (this.connections.size > 0) await Promise.all([...this.connections].map((c) => c.whenClosed()));
      await Promise.all(listenersClosed);
      this.emit('close');
    })();
    return this.closePromise;
  }

  private adopt(listener: NetServer): void {
    this.listeners_.add(listener);
    listener.on('error', (err) => this.report(err));
    listener.once('close', () => this.listeners_.delete(listener));
  }

  private handler(): Handler | undefined {
    if (!this.baseHandler) return undefined;
    this.composed ??= compose(this.middleware, this.baseHandler);
    return this.composed;
  }

  private async inject(stream: Duplex, connection: Connection, ctx: ConnectionContext): Promise<void> {
    let config: ServerConfig = {};
    const cb = this.options.serverConfigCallback;
    if (cb) {
      try {
        config = (await cb(ctx)) ?? {};
      } catch (err) {
        this.report(new HookError('serverConfigCallback', err), ctx);
        connection.destroy();
        return;
      }
    }
    if (stream.destroyed) return;
    this.pending.set(stream, connection);
    this.ssh2For(config).injectSocket(stream as never);
  }

  private ssh2For(config: ServerConfig): ssh2.Server {
    const key = JSON.stringify(config.algorithms ?? null);
    let s = this.ssh2Servers.get(key);
    if (s) return s;
    if (this.ssh2Servers.size >= MAX_CONFIGS) this.ssh2Servers.delete(this.ssh2Servers.keys().next().value!);
    s = createSsh2Server({
      hostKeys: this.hostKeys.map((k) => k.text),
      ident: this.options.version ?? DEFAULTS.version,
      ...(this.options.banner && !this.options.bannerHandler ? { banner: this.options.banner } : {}),
      ...(config.algorithms ? { algorithms: config.algorithms as Record<string, string[]> } : {}),
    });
    s.on('connection', (conn: unknown, info: { header?: { identRaw?: string } }) => {
      const c = this.pending.get(connectionStream(conn));
      const ssh = conn as Ssh2Connection;
      if (!c) {
        ssh.on('error', () => undefined);
        ssh.end();
        return;
      }
      c.attach(ssh, info);
    });
    s.on('error', (err: Error) => this.report(err));
    this.ssh2Servers.set(key, s);
    return s;
  }

  /** Reports an error on `'error'` (with `err.context`), or as a process warning without a listener. */
  private report(err: unknown, ctx?: Context): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (ctx && !('context' in error)) {
      try {
        Object.defineProperty(error, 'context', { value: ctx, configurable: true, enumerable: false });
      } catch {
        // A frozen error keeps its shape.
      }
    }
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error);
  }
}

function dedupeByType(keys: HostKey[]): HostKey[] {
  const byType = new Map<string, HostKey>();
  for (const k of keys) byType.set(k.type, k);
  return [...byType.values()];
}

/**
 * Creates a server for `handler`, listens on `addr` (`"host:port"`) and resolves with it.
 *
 * @example
 * ```ts
 * const server = await listenAndServe('127.0.0.1:2222', async (s) => {
 *   s.write(`Hello ${s.user}\n`);
 * });
 * ```
 */
export async function listenAndServe(addr: string, handler: Handler, options?: ServerOptions): Promise<Server> {
  const server = new Server({ ...options, addr, handler });
  await server.listenAndServe();
  return server;
}

/** Creates a server for `handler` that serves connections accepted by `listener`. */
export function serve(listener: NetServer, handler: Handler, options?: ServerOptions): Server {
  const server = new Server({ ...options, handler });
  server.serve(listener);
  return server;
}
