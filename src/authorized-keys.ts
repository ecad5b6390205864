/**
 * A ready `publicKeyHandler` from an `authorized_keys` file (re-read when it changes) or text,
 * with the sshd(8) key options that matter to an application server enforced or surfaced.
 *
 * @module
 */
import { certificatePermissions, type RevocationCheck } from './cert-handler.js';
import { checkCertificate } from './certs.js';
import type { Context } from './context.js';
import { InvalidOptionError, KeyParseError } from './errors.js';
import type { PublicKeyHandler } from './hooks.js';
import { keysEqual, parseAuthorizedKey, type PublicKey } from './keys.js';
import { matchFromPatterns } from './address-match.js';
import { noteAuthFailure } from './auth-policy.js';
import { mergePermissions, PERMISSION_KEYS, restrictTo, type PermitName } from './restrictions.js';
import type { Permissions } from './types.js';
import { WatchedFile } from './internal/watched-file.js';

/**
 * The options of one `authorized_keys` line, parsed and checked (see {@link parseKeyOptions}).
 * @see sshd(8) AUTHORIZED_KEYS FILE FORMAT
 */
export interface KeyOptions {
  /** `cert-authority`: the key is a CA whose user certificates are accepted. */
  certAuthority: boolean;
  /** `principals="a,b"`: with `cert-authority`, names one of which the certificate must list (instead of the user). */
  principals: string[] | undefined;
  /** `from="pattern-list"`: client addresses allowed (wildcards, CIDR, `!` negation). */
  from: string | undefined;
  /** `command="…"`: the forced command. */
  command: string | undefined;
  /** `environment="NAME=value"` entries, first of each name. */
  environment: string[];
  /** `expiry-time="YYYYMMDD[HHMM[SS]][Z]"` as milliseconds since the epoch. */
  expiryTime: number | undefined;
  /** `permitopen="host:port"` entries. */
  permitOpen: string[];
  /** `permitlisten="[host:]port"` entries. */
  permitListen: string[];
  /** What is allowed after `restrict`, `no-*` and their re-enabling counterparts, in order. */
  permits: Record<PermitName, boolean>;
}

const FLAG_PERMITS: Record<string, [PermitName, boolean]> = {
  'no-pty': ['pty', false],
  pty: ['pty', true],
  'no-port-forwarding': ['port-forwarding', false],
  'port-forwarding': ['port-forwarding', true],
  'no-agent-forwarding': ['agent-forwarding', false],
  'agent-forwarding': ['agent-forwarding', true],
  'no-x11-forwarding': ['X11-forwarding', false],
  'x11-forwarding': ['X11-forwarding', true],
  'no-user-rc': ['user-rc', false],
  'user-rc': ['user-rc', true],
};
const VALUED = new Set(['command', 'environment', 'from', 'permitopen', 'permitlisten', 'principals', 'expiry-time', 'tunnel']);

/** `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`: local time, or UTC with `Z` (as sshd). */
function parseExpiry(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/i.exec(text);
  if (!m) throw new KeyParseError(`Bad expiry-time ${JSON.stringify(text)}`);
  const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((v) => (v === undefined ? undefined : Number(v))) as number[];
  const t = m[7] ? Date.UTC(y!, mo! - 1, d!, h, mi, s) : new Date(y!, mo! - 1, d!, h, mi, s).getTime();
  const check = new Date(t);
  const [cy, cmo, cd] = m[7] ? [check.getUTCFullYear(), check.getUTCMonth(), check.getUTCDate()] : [check.getFullYear(), check.getMonth(), check.getDate()];
  if (cy !== y || cmo !== mo! - 1 || cd !== d || h > 23 || mi > 59 || s > 59) throw new KeyParseError(`Bad expiry-time ${JSON.stringify(text)}`);
  return t;
}

/**
 * Parses the raw options of an `authorized_keys` line (as {@link parseAuthorizedKey} returns
 * them) with sshd's rules: names are case-insensitive, later `no-*`/re-enabling options win
 * over earlier ones and `restrict` turns every permit off at its position. Unknown options and
 * `verify-required` (glidessh has no security-key support) make the line invalid, as in sshd;
 * `no-touch-required` and `tunnel` are accepted and have no effect.
 *
 * @throws {@link KeyParseError} naming the bad option.
 * @example
 * ```ts
 * const { key, options } = parseAuthorizedKey('restrict,pty,command="top" ssh-ed25519 AAAA…');
 * parseKeyOptions(options); // permits.pty true, permits['port-forwarding'] false, command 'top'
 * ```
 * @see sshd(8) AUTHORIZED_KEYS FILE FORMAT
 */
export function parseKeyOptions(options: readonly string[]): KeyOptions {
  const out: KeyOptions = {
    certAuthority: false,
    principals: undefined,
    from: undefined,
    command: undefined,
    environment: [],
    expiryTime: undefined,
    permitOpen: [],
    permitListen: [],
    permits: { pty: true, 'port-forwarding': true, 'agent-forwarding': true, 'X11-forwarding': true, 'user-rc': true },
  };
  for (const raw of options) {
    const eq = raw.indexOf('=');
    const name = (eq === -1 ? raw : raw.slice(0, eq)).toLowerCase();
    if (eq !== -1 && (raw[eq + 1] !== '"' || !raw.endsWith('"') || raw.length < eq + 3)) {
      throw new KeyParseError(`Key option ${JSON.stringify(name)} needs a quoted value`);
    }
    const value = eq === -1 ? undefined : raw.slice(eq + 2, -1).replace(/\\"/g, '"');
    if (VALUED.has(name) !== (value !== undefined)) {
      throw new KeyParseError(`Key option ${JSON.stringify(name)} ${value === undefined ? 'needs' : 'takes no'} value`);
    }
    const flag = FLAG_PERMITS[name];
    if (flag) {
      out.permits[flag[0]] = flag[1];
      continue;
    }
    switch (name) {
      case 'restrict':
        for (const p of Object.keys(out.permits) as PermitName[]) out.permits[p] = false;
        break;
      case 'cert-authority':
        out.certAuthority = true;
        break;
      case 'no-touch-required':
      case 'tunnel':
        break;
      case 'command':
        if (out.command !== undefined) throw new KeyParseError('Key option "command" given twice');
        out.command = value!;
        break;
      case 'from':
        if (out.from !== undefined) throw new KeyParseError('Key option "from" given twice');
        if (matchFromPatterns('0.0.0.0', value!) === undefined) throw new KeyParseError(`Bad from= list ${JSON.stringify(value)}`);
        out.from = value!;
        break;
      case 'principals':
        if (out.principals !== undefined) throw new KeyParseError('Key option "principals" given twice');
        out.principals = value!.split(',').filter((p) => p !== '');
        break;
      case 'expiry-time':
        if (out.expiryTime !== undefined) throw new KeyParseError('Key option "expiry-time" given twice');
        out.expiryTime = parseExpiry(value!);
        break;
      case 'environment': {
        const m = /^([A-Za-z0-9_]+)=/.exec(value!);
        if (!m) throw new KeyParseError(`Bad environment= entry ${JSON.stringify(value)}`);
        if (!out.environment.some((e) => e.startsWith(`${m[1]}=`))) out.environment.push(value!);
        break;
      }
      case 'permitopen':
      case 'permitlisten': {
        const ok = name === 'permitopen' ? /^(?:\[[^\]]+\]|[^:[\]\s]+):(?:\d{1,5}|\*)$/ : /^(?:(?:\[[^\]]+\]|[^:[\]\s]+):)?(?:\d{1,5}|\*)$/;
        if (!ok.test(value!)) throw new KeyParseError(`Bad ${name}= entry ${JSON.stringify(value)}`);
        (name === 'permitopen' ? out.permitOpen : out.permitListen).push(value!);
        break;
      }
      default:
        throw new KeyParseError(`Unsupported key option ${JSON.stringify(name)}`);
    }
  }
  if (out.principals !== undefined && !out.certAuthority) throw new KeyParseError('"principals" needs "cert-authority"');
  return out;
}

/** What an `authorized_keys` line grants: its restrictions in the {@link PERMISSION_KEYS} vocabulary. */
function keyPermissions(o: KeyOptions): Permissions {
  const p: Permissions = { criticalOptions: {}, extensions: {} };
  const permits = (Object.keys(o.permits) as PermitName[]).filter((n) => o.permits[n]);
  if (permits.length < Object.keys(o.permits).length) restrictTo(p, permits);
  if (o.command !== undefined) p.criticalOptions['force-command'] = o.command;
  if (o.permitOpen.length > 0) p.extensions[PERMISSION_KEYS.permitOpen] = o.permitOpen.join(' ');
  if (o.permitListen.length > 0) p.extensions[PERMISSION_KEYS.permitListen] = o.permitListen.join(' ');
  if (o.environment.length > 0) p.extensions[PERMISSION_KEYS.environment] = o.environment.join('\n');
  if (o.from !== undefined) p.extensions[PERMISSION_KEYS.from] = o.from;
  return p;
}

/** One usable line: its key and checked options. */
interface Entry {
  key: PublicKey;
  options: KeyOptions;
  line: number;
}

/** Parses a file's text; a bad line is skipped and reported (as sshd skips it), the rest is used. */
function parseEntries(text: string, onError: (err: Error) => void): Entry[] {
  const out: Entry[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    try {
      const parsed = parseAuthorizedKey(t);
      out.push({ key: parsed.key, options: parseKeyOptions(parsed.options), line: i + 1 });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      onError(new KeyParseError(`authorized_keys line ${i + 1} skipped: ${detail}`, { cause: err }));
    }
  });
  return out;
}

/** Where the keys come from and how they are checked. */
export interface AuthorizedKeysOptions {
  /** Path of an `authorized_keys` file, read again whenever it changes. */
  path?: string;
  /** `authorized_keys` text, fixed. Exactly one of `path` and `text` is required. */
  text?: string;
  /**
   * Asked for every certificate accepted through a `cert-authority` line; `true` rejects it.
   * A throw rejects too.
   */
  isRevoked?: RevocationCheck;
  /** The current time in ms, for `expiry-time` and certificate validity. @defaultValue `Date.now` */
  clock?: () => number | Date;
  /**
   * Told about a line that was skipped (bad key or option) and a file that cannot be read
   * (then no key is accepted). Unset: `process.emitWarning`.
   */
  onError?: (err: Error) => void;
}

/** A `publicKeyHandler` built from `authorized_keys`, see {@link authorizedKeysHandler}. */
export interface AuthorizedKeysHandler extends PublicKeyHandler {
  /** Whether a file watcher is open (one is opened on first use, closed with the server). */
  readonly watching: boolean;
  /** Closes the file watcher now; the handler keeps working (a later use reopens it). */
  close(): void;
}

/**
 * Builds a `publicKeyHandler` from an `authorized_keys` file or text, as sshd reads it (what
 * wish's `WithAuthorizedKeys` does in Go). The first line that authorizes the key wins:
 *
 * - a plain key matches its own line (never a `cert-authority` line);
 * - a certificate matches a `cert-authority` line of its CA, and must pass
 *   {@link checkCertificate} (the user, or one of `principals="…"`, among its principals;
 *   its validity window; `source-address`) and `isRevoked`;
 * - `expiry-time` and `from` (client address patterns) are enforced;
 * - `command`, `environment`, `permitopen`, `permitlisten`, `restrict` and the `no-*` options
 *   go into `ctx.permissions`, where the session and {@link portForwardingAllowed} enforce them.
 *
 * A file is checked (`stat`) on every attempt and watched with `fs.watch` while a server that
 * used it is open, so edits apply at once, without a restart; the watcher closes with the
 * server (or with `handler.close()`) and never keeps the process alive. The handler never
 * depends on the user name except for certificate principals, so it reveals nothing about
 * which users exist.
 *
 * @example
 * ```ts
 * const server = new Server({ publicKeyHandler: authorizedKeysHandler({ path: '/etc/myapp/authorized_keys' }) });
 * ```
 * @see sshd(8) AUTHORIZED_KEYS FILE FORMAT
 */
export function authorizedKeysHandler(options: AuthorizedKeysOptions): AuthorizedKeysHandler {
  if ((options.path === undefined) === (options.text === undefined)) {
    throw new InvalidOptionError('path', 'authorizedKeysHandler needs exactly one of "path" and "text"');
  }
  const onError = options.onError ?? ((err: Error) => process.emitWarning(err));
  const file = options.path !== undefined ? new WatchedFile(options.path, (t) => parseEntries(t, onError), onError, []) : undefined;
  const fixed = options.text !== undefined ? parseEntries(options.text, onError) : [];
  const clock = options.clock ?? Date.now;

  const handler = async (ctx: Context, key: PublicKey): Promise<boolean> => {
    const entries = file ? await file.current(ctx.server) : fixed;
    const now = Number(clock());
    const cert = key.certificate;
    let reason = 'key-not-authorized';
    for (const e of entries) {
      if (cert ? !e.options.certAuthority || !keysEqual(e.key, cert.signatureKey) : e.options.certAuthority || !keysEqual(e.key, key)) {
        continue;
      }
      if (e.options.expiryTime !== undefined && e.options.expiryTime < now) {
        reason = 'key-expired';
        continue;
      }
      if (e.options.from !== undefined && matchFromPatterns(ctx.remoteAddress, e.options.from) !== true) {
        reason = 'source-address';
        continue;
      }
      let granted: Permissions | undefined = keyPermissions(e.options);
      if (cert) {
        const check = { user: ctx.user, remoteAddress: ctx.remoteAddress, now, principals: e.options.principals };
        const problem = checkCertificate(cert, check);
        if (problem) {
          reason = problem;
          continue;
        }
        if (options.isRevoked && (await options.isRevoked(cert, ctx)) !== false) {
          reason = 'certificate-revoked';
          continue;
        }
        granted = mergePermissions(certificatePermissions(cert), granted);
        if (!granted) {
          reason = 'conflicting-permissions';
          continue;
        }
      }
      Object.assign(ctx.permissions.criticalOptions, granted.criticalOptions);
      Object.assign(ctx.permissions.extensions, granted.extensions);
      return true;
    }
    noteAuthFailure(ctx, reason);
    return false;
  };
  return Object.defineProperties(handler, {
    watching: { get: () => file?.watching ?? false, enumerable: true },
    close: { value: () => file?.close(), enumerable: true },
  }) as AuthorizedKeysHandler;
}
