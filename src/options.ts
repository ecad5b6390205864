/**
 * {@link ServerOptions}: every setting of a {@link Server}, its default, and its validation.
 *
 * @module
 */
import { InvalidOptionError } from './errors.js';
import { addToBlockList, parseMaxStartups, type MaxStartups, type PenaltyOptions } from './limits.js';
import { BlockList } from 'node:net';
import type { ProxyProtocolOptions } from './proxy-protocol.js';
import type {
  BannerHandler,
  ChannelHandler,
  ConnCallback,
  ConnectionCloseCallback,
  ConnectionFailedCallback,
  Handler,
  KeyboardInteractiveHandler,
  LocalPortForwardingCallback,
  PasswordHandler,
  PtyCallback,
  PublicKeyHandler,
  RequestHandler,
  ReversePortForwardingCallback,
  ServerConfigCallback,
  SessionRequestCallback,
  SubsystemHandler,
  LocalUnixForwardingCallback,
  ReverseUnixForwardingCallback,
  AgentForwardingCallback,
  AuthFailedCallback,
} from './hooks.js';
import { validateAuthMethods } from './auth-policy.js';

/**
 * Settings of a {@link Server}. Every field is optional; the defaults are safe for a server
 * that faces the internet (see the README's defaults table).
 */
export interface ServerOptions {
  /**
   * Address for `listenAndServe()`, `"host:port"`; `"[::1]:22"` for IPv6, `":22"` for every
   * interface.
   * @defaultValue `":22"`
   */
  addr?: string;
  /** Serves shell and exec sessions. Unset: shell and exec requests are refused. */
  handler?: Handler;
  /**
   * Host private keys, PEM or OpenSSH format (Ed25519, ECDSA, RSA); one per type. Unset: one
   * Ed25519 key is generated when the server is created.
   */
  hostKeys?: Array<string | Buffer>;
  /**
   * Software version; the identification sent is `SSH-2.0-<version>`. It must be printable
   * ASCII without spaces or `-`.
   * @defaultValue `"glidessh"`
   */
  version?: string;
  /** Text shown to clients before authentication. Unset: no banner. */
  banner?: string;
  /** Computes the banner per connection; wins over `banner`. */
  bannerHandler?: BannerHandler;
  /** Decides password logins. Unset: the method is not offered. */
  passwordHandler?: PasswordHandler;
  /** Decides public-key logins (signatures are verified by glidessh). Unset: not offered. */
  publicKeyHandler?: PublicKeyHandler;
  /** Runs keyboard-interactive logins. Unset: not offered. */
  keyboardInteractiveHandler?: KeyboardInteractiveHandler;
  /** Decides pty requests. Unset: every pty is allowed. */
  ptyCallback?: PtyCallback;
  /** Decides shell/exec/subsystem requests. Unset: all allowed. */
  sessionRequestCallback?: SessionRequestCallback;
  /** Sees, wraps or drops each transport before the handshake. Unset: used as is. */
  connCallback?: ConnCallback;
  /** Told about connections that fail before authentication. */
  connectionFailedCallback?: ConnectionFailedCallback;
  /** Told when a connection that reached `'connection'` closes. */
  connectionCloseCallback?: ConnectionCloseCallback;
  /** Decides `direct-tcpip` (ssh -L). Unset: **denied**. */
  localPortForwardingCallback?: LocalPortForwardingCallback;
  /** Decides `tcpip-forward` (ssh -R). Unset: **denied**. */
  reversePortForwardingCallback?: ReversePortForwardingCallback;
  /** Decides `direct-streamlocal@openssh.com` (ssh -L to a Unix socket). Unset: **denied**. */
  localUnixForwardingCallback?: LocalUnixForwardingCallback;
  /** Decides `streamlocal-forward@openssh.com` (ssh -R from a Unix socket). Unset: **denied**. */
  reverseUnixForwardingCallback?: ReverseUnixForwardingCallback;
  /** Decides `auth-agent-req@openssh.com` (ssh -A). Unset: accepted, as gliderlabs does. */
  agentForwardingCallback?: AgentForwardingCallback;
  /**
   * Milliseconds from accept until authenticated, after which the connection is closed
   * (OpenSSH's LoginGraceTime). `0`: no limit.
   * @defaultValue `120000`
   */
  handshakeTimeout?: number;
  /** Milliseconds without any data from the client before the connection is closed. Unset or `0`: none. */
  idleTimeout?: number;
  /** Milliseconds from accept after which the connection is closed, busy or not. Unset or `0`: none. */
  maxTimeout?: number;
  /**
   * Failed authentication attempts per connection before it is closed.
   * @defaultValue `6`
   */
  maxAuthTries?: number;
  /**
   * Multi-factor authentication, as OpenSSH's AuthenticationMethods: lists of methods, one of
   * which must be completed in order (e.g. `[['publickey', 'keyboard-interactive']]`: a key,
   * then a one-time code). Each step short of a full list is an SSH partial success; the
   * permissions of the factors combine (never widening), and the key verified by a `publickey`
   * factor is `ctx.publicKey` from then on. Every method named needs its handler.
   * Unset: any one offered method authenticates.
   * @see sshd_config(5) AuthenticationMethods, RFC 4252 §5.1
   */
  authMethods?: string[][];
  /**
   * Told about every failed authentication attempt, with the method and a reason, for
   * fail2ban-style logging. The client's reply is the same whatever the reason, and for an
   * unknown user as for a known one. Unset: not reported.
   */
  authFailedCallback?: AuthFailedCallback;
  /**
   * Channel handlers by channel type; `"default"` handles types without an entry.
   * @defaultValue `{ session: defaultSessionHandler }`
   */
  channelHandlers?: Record<string, ChannelHandler>;
  /** Global request handlers by name; `"default"` is the fallback. Unset: every request answered false. */
  requestHandlers?: Record<string, RequestHandler>;
  /** Subsystem handlers by name; `"default"` is the fallback. Unset: subsystem requests refused. */
  subsystemHandlers?: Record<string, SubsystemHandler>;
  /** Chooses algorithms per connection. Unset: ssh2's defaults. */
  serverConfigCallback?: ServerConfigCallback;
  /**
   * Connections served at once; more are refused at accept (a clean close, before any SSH work).
   * @defaultValue `10000`
   */
  maxConnections?: number;
  /**
   * Random early drop of connections not yet authenticated, as OpenSSH's MaxStartups:
   * `"start:rate:full"` or an object.
   * @defaultValue `"10:30:100"`
   */
  maxStartups?: string | MaxStartups;
  /** Connections not yet authenticated per source address (OpenSSH PerSourceMaxStartups). Unset: no per-source cap. */
  perSourceMaxStartups?: number;
  /**
   * Penalty boxes for sources whose connections fail authentication, time out in the
   * handshake or are refused (OpenSSH PerSourcePenalties); `false` turns them off.
   * @defaultValue `{}` (on, with the defaults of {@link PenaltyOptions})
   */
  penalties?: PenaltyOptions | false;
  /**
   * Session channels open at once per connection (OpenSSH MaxSessions); more are refused.
   * @defaultValue `10`
   */
  maxSessions?: number;
  /**
   * Channels of any type open at once per connection; more are refused.
   * @defaultValue `256`
   */
  maxChannels?: number;
  /**
   * Milliseconds of silence from an authenticated client after which the server sends a
   * keepalive request (OpenSSH ClientAliveInterval). `0`: off.
   * @defaultValue `0`
   */
  keepaliveInterval?: number;
  /**
   * Unanswered keepalives before the connection is closed (OpenSSH ClientAliveCountMax).
   * @defaultValue `3`
   */
  keepaliveCountMax?: number;
  /**
   * Drop clients that do not negotiate strict key exchange (the Terrapin countermeasure,
   * CVE-2023-48795). Off by default because some clients (paramiko before 3.4) lack it.
   * @defaultValue `false`
   */
  requireStrictKex?: boolean;
  /**
   * Milliseconds a channel handler, request handler, session callback or banner handler may
   * take before it counts as a deny (reported as `ERR_HOOK`). Auth hooks are bounded by
   * `handshakeTimeout`. `0`: no limit.
   * @defaultValue `30000`
   */
  hookTimeout?: number;
  /**
   * Expect a PROXY protocol (v1 or v2) header from a load balancer before the SSH stream; the
   * client address it carries becomes `ctx.remoteAddress` and is what limits and penalties
   * see. A connection without a valid header is dropped. `true` or settings.
   * Unset: no PROXY header expected.
   */
  proxyProtocol?: boolean | ProxyProtocolOptions;
}

/** The defaults of the numeric options. */
export const DEFAULTS = Object.freeze({
  /** Listen address for `listenAndServe()`. */
  addr: ':22',
  /** Software version in the identification line. */
  version: 'glidessh',
  /** Milliseconds until authenticated (OpenSSH LoginGraceTime). */
  handshakeTimeout: 120_000,
  /** No idle timeout. */
  idleTimeout: 0,
  /** No absolute timeout. */
  maxTimeout: 0,
  /** Failed auth attempts before disconnect (OpenSSH MaxAuthTries). */
  maxAuthTries: 6,
  /** Connections at once. */
  maxConnections: 10_000,
  /** OpenSSH MaxStartups. */
  maxStartups: '10:30:100',
  /** OpenSSH MaxSessions. */
  maxSessions: 10,
  /** Channels per connection. */
  maxChannels: 256,
  /** Server keepalive off (OpenSSH ClientAliveInterval 0). */
  keepaliveInterval: 0,
  /** OpenSSH ClientAliveCountMax. */
  keepaliveCountMax: 3,
  /** Milliseconds a non-auth hook may take. */
  hookTimeout: 30_000,
});

const FUNCTIONS = [
  'handler',
  'bannerHandler',
  'passwordHandler',
  'publicKeyHandler',
  'keyboardInteractiveHandler',
  'ptyCallback',
  'sessionRequestCallback',
  'connCallback',
  'connectionFailedCallback',
  'connectionCloseCallback',
  'localPortForwardingCallback',
  'reversePortForwardingCallback',
  'localUnixForwardingCallback',
  'reverseUnixForwardingCallback',
  'agentForwardingCallback',
  'serverConfigCallback',
  'authFailedCallback',
] as const;
const REGISTRIES = ['channelHandlers', 'requestHandlers', 'subsystemHandlers'] as const;
const DURATIONS = ['handshakeTimeout', 'idleTimeout', 'maxTimeout', 'keepaliveInterval', 'hookTimeout'] as const;
const COUNTS = ['maxConnections', 'perSourceMaxStartups', 'maxSessions', 'maxChannels', 'keepaliveCountMax'] as const;
const KNOWN = new Set<string>([
  ...FUNCTIONS,
  ...REGISTRIES,
  ...DURATIONS,
  ...COUNTS,
  'maxStartups',
  'penalties',
  'requireStrictKex',
  'proxyProtocol',
  'addr',
  'hostKeys',
  'version',
  'banner',
  'maxAuthTries',
  'authMethods',
]);

/** The longest timer delay Node supports (about 24.8 days). */
const MAX_DELAY = 2 ** 31 - 1;

/** Checks every option; throws {@link InvalidOptionError} naming the first bad one. */
export function validateOptions(options: unknown): ServerOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'must be an object');
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new InvalidOptionError(key, 'is not a known option');
  }
  for (const key of FUNCTIONS) {
    if (o[key] !== undefined && typeof o[key] !== 'function') throw new InvalidOptionError(key, 'must be a function');
  }
  for (const key of REGISTRIES) {
    const reg = o[key];
    if (reg === undefined) continue;
    if (typeof reg !== 'object' || reg === null || Array.isArray(reg)) {
      throw new InvalidOptionError(key, 'must be an object mapping names to functions');
    }
    for (const [name, fn] of Object.entries(reg)) {
      if (typeof fn !== 'function') throw new InvalidOptionError(key, `entry "${name}" must be a function`);
    }
  }
  for (const key of DURATIONS) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_DELAY) {
      throw new InvalidOptionError(key, `must be a whole number of milliseconds from 0 to ${MAX_DELAY}`);
    }
  }
  for (const key of COUNTS) {
    const v = o[key];
    if (v === undefined) continue;
    const min = key === 'keepaliveCountMax' ? 1 : key === 'maxSessions' ? 0 : 1;
    if (typeof v !== 'number' || !((Number.isInteger(v) && v >= min) || v === Infinity)) {
      throw new InvalidOptionError(key, `must be a whole number of at least ${min} (or Infinity)`);
    }
  }
  if (o.maxStartups !== undefined) {
    if (typeof o.maxStartups !== 'string' && (typeof o.maxStartups !== 'object' || o.maxStartups === null)) {
      throw new InvalidOptionError('maxStartups', 'must be "start:rate:full" or { start, rate, full }');
    }
    try {
      parseMaxStartups(o.maxStartups as string | MaxStartups);
    } catch (err) {
      throw new InvalidOptionError('maxStartups', (err as Error).message);
    }
  }
  if (o.penalties !== undefined && o.penalties !== false) validatePenalties(o.penalties);
  if (o.requireStrictKex !== undefined && typeof o.requireStrictKex !== 'boolean') {
    throw new InvalidOptionError('requireStrictKex', 'must be a boolean');
  }
  if (o.proxyProtocol !== undefined) validateProxyProtocol(o.proxyProtocol);
  if (o.maxAuthTries !== undefined) {
    const v = o.maxAuthTries;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new InvalidOptionError('maxAuthTries', 'must be a whole number of at least 1');
    }
  }
  if (o.authMethods !== undefined) validateAuthMethods(o);
  if (o.addr !== undefined) {
    if (typeof o.addr !== 'string') throw new InvalidOptionError('addr', 'must be a "host:port" string');
    parseAddr(o.addr);
  }
  if (o.version !== undefined) {
    if (typeof o.version !== 'string' || !/^[\x21-\x2c\x2e-\x7e]{1,200}$/.test(o.version)) {
      throw new InvalidOptionError('version', 'must be 1-200 printable ASCII characters without spaces or "-"');
    }
  }
  if (o.banner !== undefined && typeof o.banner !== 'string') {
    throw new InvalidOptionError('banner', 'must be a string');
  }
  if (o.hostKeys !== undefined) {
    if (!Array.isArray(o.hostKeys)) throw new InvalidOptionError('hostKeys', 'must be an array of private keys');
    for (const k of o.hostKeys) {
      if (typeof k !== 'string' && !Buffer.isBuffer(k)) {
        throw new InvalidOptionError('hostKeys', 'each key must be a string or a Buffer');
      }
    }
  }
  return o as ServerOptions;
}

/** Splits `"host:port"`, `"[v6]:port"` or `":port"`; an empty host means every interface. */
export function parseAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidOptionError('addr', `"${addr}" is not "host:port"`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? undefined : host, port };
}

const PENALTY_KEYS = ['authFail', 'noAuth', 'graceExceeded', 'min', 'max', 'maxSources'] as const;

function validatePenalties(p: unknown): void {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new InvalidOptionError('penalties', 'must be false or an object');
  }
  const o = p as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key === 'exempt') continue;
    if (!(PENALTY_KEYS as readonly string[]).includes(key)) throw new InvalidOptionError('penalties', `unknown field "${key}"`);
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new InvalidOptionError('penalties', `"${key}" must be a number of seconds >= 0`);
    }
  }
  if (o.exempt !== undefined) {
    if (!Array.isArray(o.exempt)) throw new InvalidOptionError('penalties', '"exempt" must be an array of addresses or CIDR blocks');
    const list = new BlockList();
    for (const e of o.exempt) {
      try {
        addToBlockList(list, String(e));
      } catch (err) {
        throw new InvalidOptionError('penalties', (err as Error).message);
      }
    }
  }
}

function validateProxyProtocol(v: unknown): void {
  if (typeof v === 'boolean') return;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidOptionError('proxyProtocol', 'must be a boolean or { trusted?, timeout? }');
  }
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'trusted' && key !== 'timeout') throw new InvalidOptionError('proxyProtocol', `unknown field "${key}"`);
  }
  if (o.timeout !== undefined && (typeof o.timeout !== 'number' || !Number.isInteger(o.timeout) || o.timeout < 1 || o.timeout > 2 ** 31 - 1)) {
    throw new InvalidOptionError('proxyProtocol', '"timeout" must be a whole number of milliseconds');
  }
  if (o.trusted !== undefined) {
    if (!Array.isArray(o.trusted)) throw new InvalidOptionError('proxyProtocol', '"trusted" must be an array of addresses or CIDR blocks');
    const list = new BlockList();
    for (const e of o.trusted) {
      try {
        addToBlockList(list, String(e));
      } catch (err) {
        throw new InvalidOptionError('proxyProtocol', (err as Error).message);
      }
    }
  }
}
