/**
 * The per-connection {@link Context}.
 *
 * @module
 */
import type { PublicKey } from './keys.js';
import type { Server } from './server.js';
import type { Permissions } from './types.js';
import { LazySignal } from './internal/lazy-signal.js';

/**
 * One per connection: metadata, what authentication granted, a cancellation signal, and
 * values shared by every session of the connection. Auth handlers, callbacks and sessions
 * all see the same object.
 *
 * @example
 * ```ts
 * passwordHandler: (ctx, password) => {
 *   ctx.set('role', 'admin');
 *   return password === 'secret';
 * }
 * ```
 */
export interface Context {
  /** The user name of the current auth attempt; after authentication, the authenticated one. */
  readonly user: string;
  /** Hex of the exchange hash of the first key exchange; `""` before it completed. */
  readonly sessionId: string;
  /** The client's identification line, e.g. `"SSH-2.0-OpenSSH_9.2p1 Debian-2"`. */
  readonly clientVersion: string;
  /** The server's identification line, e.g. `"SSH-2.0-glidessh"`. */
  readonly serverVersion: string;
  /** Client address, as on `net.Socket`. */
  readonly remoteAddress: string;
  /** Client port. */
  readonly remotePort: number;
  /** Server address the client connected to. */
  readonly localAddress: string;
  /** Server port the client connected to. */
  readonly localPort: number;
  /**
   * What auth handlers grant. Writable by auth handlers: each attempt starts with a fresh,
   * empty object and only the successful attempt's object is kept.
   */
  permissions: Permissions;
  /** The key whose signature verified on the attempt that authenticated; else `undefined`. */
  readonly publicKey: PublicKey | undefined;
  /** Aborts when the connection closes or fails; `reason` says why. */
  readonly signal: AbortSignal;
  /** The server this connection belongs to. */
  readonly server: Server;
  /** Reads a per-connection value. */
  get<T = unknown>(key: unknown): T | undefined;
  /** Stores a per-connection value, shared with every session of the connection. */
  set(key: unknown, value: unknown): void;
}

/** Fresh, empty permissions. */
export function newPermissions(): Permissions {
  return { criticalOptions: {}, extensions: {} };
}

/** A deep copy, so that a session's copy cannot change the connection's. */
export function copyPermissions(p: Permissions): Permissions {
  return { criticalOptions: { ...p.criticalOptions }, extensions: { ...p.extensions } };
}

/** @internal The mutable implementation behind {@link Context}. */
export class ConnectionContext implements Context {
  user = '';
  sessionId = '';
  clientVersion = '';
  serverVersion = '';
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  permissions: Permissions = newPermissions();
  publicKey: PublicKey | undefined = undefined;
  readonly aborter = new LazySignal();
  readonly server: Server;
  private values: Map<unknown, unknown> | undefined;

  constructor(
    server: Server,
    addr: { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number },
  ) {
    this.server = server;
    this.remoteAddress = addr.remoteAddress ?? '';
    this.remotePort = addr.remotePort ?? 0;
    this.localAddress = addr.localAddress ?? '';
    this.localPort = addr.localPort ?? 0;
  }

  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  get<T = unknown>(key: unknown): T | undefined {
    return this.values?.get(key) as T | undefined;
  }

  set(key: unknown, value: unknown): void {
    (this.values ??= new Map()).set(key, value);
  }
}
