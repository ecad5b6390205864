/**
 * Every handler and callback type, in one place (the `ssh.go` of glidessh). A `*Handler`
 * does the work; a `*Callback` answers a yes/no policy question. Every hook takes the
 * connection's {@link Context} first (or the {@link Session}, which carries it), may return a
 * value or a promise, and counts as *deny* when it throws or rejects; the error goes to the
 * server's `'error'` event with the context attached as `err.context`.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import type { Context } from './context.js';
import type { PublicKey } from './keys.js';
import type { Session } from './session.js';
import type { NewChannel } from './channel.js';
import type { KeyboardInteractiveChallenge, MaybePromise, Pty } from './types.js';

/** Serves one session (shell, exec or subsystem). When it settles the session exits. */
export type Handler = (session: Session) => MaybePromise<void>;

/** Serves a named subsystem such as `sftp`. */
export type SubsystemHandler = Handler;

/**
 * Wraps a handler. With `server.use(a, b)`, `a` is outermost: it runs first and calls `b`.
 * @example
 * ```ts
 * const timing: Middleware = (next) => async (s) => {
 *   const t = Date.now();
 *   await next(s);
 *   s.stderr.write(`took ${Date.now() - t} ms\n`);
 * };
 * ```
 */
export type Middleware = (next: Handler) => Handler;

/** Decides a password login. */
export type PasswordHandler = (ctx: Context, password: string) => MaybePromise<boolean>;

/**
 * Decides whether a public key may log in. It may be called for keys the client only offers;
 * the key becomes `ctx.publicKey` only after its signature verified on the final attempt.
 */
export type PublicKeyHandler = (ctx: Context, key: PublicKey) => MaybePromise<boolean>;

/** Runs a keyboard-interactive exchange through `challenge` and decides the login. */
export type KeyboardInteractiveHandler = (
  ctx: Context,
  challenge: KeyboardInteractiveChallenge,
) => MaybePromise<boolean>;

/** Decides whether a pty request is allowed. */
export type PtyCallback = (ctx: Context, pty: Pty) => MaybePromise<boolean>;

/** Decides whether a session may start a shell, an exec or a subsystem. */
export type SessionRequestCallback = (
  session: Session,
  requestType: 'shell' | 'exec' | 'subsystem',
) => MaybePromise<boolean>;

/**
 * Sees each accepted transport before the SSH handshake. Return a stream to use instead
 * (a wrapper that counts bytes, say), `undefined` to use it as is, or `null` to drop it.
 */
export type ConnCallback = (ctx: Context, socket: Duplex) => MaybePromise<Duplex | null | undefined>;

/** Told when a connection fails before it is authenticated (handshake error, auth failure, timeout). */
export type ConnectionFailedCallback = (socket: Duplex, err: Error) => void;

/** Told when a connection that reached the server's `'connection'` event has closed. */
export type ConnectionCloseCallback = (ctx: Context) => void;

/** Extra facts about a `direct-tcpip` request. */
export interface ForwardOrigin {
  /** The address the client says the connection came from. */
  originatorAddress: string;
  /** The port the client says the connection came from. */
  originatorPort: number;
}

/** Decides whether the client may open a connection to `host:port` (`ssh -L`). */
export type LocalPortForwardingCallback = (
  ctx: Context,
  destinationHost: string,
  destinationPort: number,
  origin: ForwardOrigin,
) => MaybePromise<boolean>;

/** Decides whether the client may have the server listen on `host:port` (`ssh -R`). */
export type ReversePortForwardingCallback = (ctx: Context, bindHost: string, bindPort: number) => MaybePromise<boolean>;

/**
 * Decides whether the client may connect to the Unix socket `socketPath` on the server
 * (`ssh -L 8080:/run/app.sock`, channel `direct-streamlocal@openssh.com`).
 * @see OpenSSH PROTOCOL §2.4
 */
export type LocalUnixForwardingCallback = (ctx: Context, socketPath: string) => MaybePromise<boolean>;

/**
 * Decides whether the client may have the server listen on the Unix socket `socketPath`
 * (`ssh -R /tmp/app.sock:localhost:8080`, request `streamlocal-forward@openssh.com`).
 * @see OpenSSH PROTOCOL §2.4
 */
export type ReverseUnixForwardingCallback = (ctx: Context, socketPath: string) => MaybePromise<boolean>;

/**
 * Decides whether a session's `auth-agent-req@openssh.com` (`ssh -A`) is accepted, which makes
 * `agentRequested(session)` true.
 * @see OpenSSH PROTOCOL.agent
 */
export type AgentForwardingCallback = (ctx: Context) => MaybePromise<boolean>;

/**
 * Why an authentication attempt failed: `'denied'` (a handler said no), `'bad-signature'`,
 * `'invalid-key'` (unparsable or unsupported key), `'method-not-allowed'` (not offered at this
 * point, e.g. out of `authMethods` order), `'repeated-key'` (the same key for two `publickey`
 * factors), `'conflicting-permissions'` (factors with different forced commands), and from the
 * built-in handlers `'key-not-authorized'`, `'key-expired'`, `'source-address'`,
 * `'certificate-untrusted-ca'`, `'certificate-expired'`, `'certificate-not-yet-valid'`,
 * `'certificate-principal'`, `'certificate-revoked'`, `'certificate-invalid'`.
 */
export type AuthFailureReason =
  | 'denied'
  | 'bad-signature'
  | 'invalid-key'
  | 'method-not-allowed'
  | 'repeated-key'
  | 'conflicting-permissions'
  | 'key-not-authorized'
  | 'key-expired'
  | 'source-address'
  | 'certificate-untrusted-ca'
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'certificate-principal'
  | 'certificate-revoked'
  | 'certificate-invalid'
  | (string & {});

/** One failed authentication attempt, as told to {@link AuthFailedCallback}. */
export interface AuthFailure {
  /** The method tried: `'publickey'`, `'password'`, `'keyboard-interactive'`, … */
  method: string;
  /** Why it failed. */
  reason: AuthFailureReason;
  /** The user name the client sent (it may not exist; nothing told the client either way). */
  user: string;
  /** For `publickey`, the key offered (its signature is not necessarily verified). */
  publicKey: PublicKey | undefined;
}

/**
 * Told about every failed authentication attempt (not `none`), for logs or fail2ban. It
 * cannot change the outcome; a throw is reported on `'error'`.
 *
 * @example
 * ```ts
 * authFailedCallback: (ctx, f) =>
 *   console.log(`Failed ${f.method} for ${f.user} from ${ctx.remoteAddress} port ${ctx.remotePort}: ${f.reason}`),
 * ```
 */
export type AuthFailedCallback = (ctx: Context, failure: AuthFailure) => MaybePromise<void>;

/** Computes the banner shown before authentication, per connection. */
export type BannerHandler = (ctx: Context) => MaybePromise<string>;

/** Algorithm lists in preference order; each replaces ssh2's default list. */
export interface Algorithms {
  /** Key exchange methods. */
  kex?: string[];
  /** Ciphers. */
  cipher?: string[];
  /** MACs. */
  hmac?: string[];
  /** Compression methods. */
  compress?: string[];
  /** Host key algorithm order (ssh2 only reorders the RSA variants). */
  serverHostKey?: string[];
}

/** Per-connection transport settings returned by `serverConfigCallback`. */
export interface ServerConfig {
  /** Algorithm preferences; unset lists keep ssh2's defaults. */
  algorithms?: Algorithms;
}

/** Chooses transport settings for one connection (before the key exchange). */
export type ServerConfigCallback = (ctx: Context) => MaybePromise<ServerConfig>;

/**
 * Handles a channel open of one type. It must call `newChannel.accept()` or
 * `newChannel.reject()`; if it returns without doing either, the channel is rejected.
 */
export type ChannelHandler = (ctx: Context, newChannel: NewChannel) => MaybePromise<void>;

/** A global request from the client (RFC 4254 §4). */
export interface GlobalRequest {
  /** The request name, e.g. `"tcpip-forward"`. */
  readonly name: string;
  /** Whether the client waits for an answer. */
  readonly wantReply: boolean;
  /** The type-specific data, unparsed. */
  readonly payload: Buffer;
}

/**
 * Answers a global request: `true`/`false`, or `{ ok, payload }` to send data with a success
 * (as `tcpip-forward` does with the bound port).
 */
export type RequestHandler = (
  ctx: Context,
  request: GlobalRequest,
) => MaybePromise<boolean | RequestReply>;

/** A global request answer with data. */
export interface RequestReply {
  /** Success or failure. */
  ok: boolean;
  /** Data sent with a success. */
  payload?: Buffer;
}
