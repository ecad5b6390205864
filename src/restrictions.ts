/**
 * What a connection may do, decided in one place from what authentication granted
 * (`ctx.permissions`), with OpenSSH's semantics:
 *
 * - a login whose permissions carry no restriction (a password, a plain `authorized_keys` line,
 *   your own handler) may do everything the server's callbacks allow;
 * - a certificate login may do only what its `permit-*` extensions grant;
 * - an `authorized_keys` line with `restrict` or `no-*` options may do what is left.
 *
 * The vocabulary lives in `ctx.permissions` so that it follows the auth rules (fresh per
 * attempt, only the successful attempt's kept): `criticalOptions['force-command']`,
 * `criticalOptions['source-address']`, `extensions['permit-pty']` and the other `permit-*`
 * names, and the glidessh names in {@link PERMISSION_KEYS}.
 *
 * @module
 */
import type { Permissions } from './types.js';

/**
 * A feature that restrictions can take away: the suffix of its OpenSSH certificate extension
 * (`permit-pty`, `permit-port-forwarding`, …).
 */
export type PermitName = 'pty' | 'port-forwarding' | 'agent-forwarding' | 'X11-forwarding' | 'user-rc';

/** Every {@link PermitName}. */
const PERMIT_NAMES: readonly PermitName[] = ['pty', 'port-forwarding', 'agent-forwarding', 'X11-forwarding', 'user-rc'];

/**
 * The glidessh keys in `permissions.extensions` (values are strings, like every extension).
 *
 * @example
 * ```ts
 * server.handle((s) => {
 *   if (PERMISSION_KEYS.restricted in s.permissions.extensions) s.stderr.write('restricted login\n');
 * });
 * ```
 * @see sshd(8) AUTHORIZED_KEYS FILE FORMAT, OpenSSH PROTOCOL.certkeys
 */
export const PERMISSION_KEYS = Object.freeze({
  /**
   * Present: the login is restricted, and only the `permit-*` extensions present are allowed.
   * Set for every certificate login and for `authorized_keys` lines with `restrict` or `no-*`.
   */
  restricted: 'restrict@glidessh',
  /** `permitopen` destinations, space-separated `host:port` (`*` for any host or port). */
  permitOpen: 'permitopen@glidessh',
  /** `permitlisten` addresses for remote forwarding, space-separated `host:port`. */
  permitListen: 'permitlisten@glidessh',
  /** `environment` entries, newline-separated `NAME=value`; added to `session.environ`. */
  environment: 'environment@glidessh',
  /** The `from` pattern list the login matched (informational; enforced during auth). */
  from: 'from@glidessh',
});

/** Where permissions can be read from: a Context, a Session, or a Permissions object. */
export type PermissionsSource =
  | Permissions
  | {
      /** The permissions of a Context or Session. */
      readonly permissions: Permissions;
    };

function permsOf(source: PermissionsSource): Permissions {
  return 'criticalOptions' in source ? source : source.permissions;
}

/**
 * Whether the connection may use a feature: `true` unless the permissions are restricted
 * (see {@link PERMISSION_KEYS}) and lack `permit-<name>`. The server's own callbacks
 * (`ptyCallback`, forwarding callbacks) still apply on top.
 *
 * @example
 * ```ts
 * if (!isPermitted(ctx, 'agent-forwarding')) return false;
 * ```
 * @see OpenSSH PROTOCOL.certkeys (extensions), sshd(8) `no-pty`, `restrict`
 */
export function isPermitted(source: PermissionsSource, name: PermitName): boolean {
  const ext = permsOf(source).extensions;
  return !Object.hasOwn(ext, PERMISSION_KEYS.restricted) || Object.hasOwn(ext, `permit-${name}`);
}

/**
 * The forced command (certificate `force-command` or `authorized_keys` `command=`), if any.
 * The session already runs it in place of what the client asked for (`session.rawCommand`).
 *
 * @example
 * ```ts
 * server.handle((s) => {
 *   if (forcedCommand(s)) log(`forced; the client asked for ${s.environ.find((e) => e.startsWith('SSH_ORIGINAL_COMMAND='))}`);
 * });
 * ```
 * @see sshd(8) `command="…"`, PROTOCOL.certkeys `force-command`
 */
export function forcedCommand(source: PermissionsSource): string | undefined {
  const v = permsOf(source).criticalOptions['force-command'];
  return typeof v === 'string' ? v : undefined;
}

/** Splits `host:port`, `[v6]:port`, `*:port`, or a bare `port` (host `*`). */
function splitHostPort(entry: string): { host: string; port: string } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5}|\*)$/.exec(entry);
  if (m) return { host: (m[1] ?? m[2] ?? '').toLowerCase(), port: m[3]! };
  if (/^(\d{1,5}|\*)$/.test(entry)) return { host: '*', port: entry };
  return undefined;
}

/**
 * Whether the login's restrictions allow forwarding to (`'local'`, `ssh -L`, `direct-tcpip`)
 * or listening on (`'remote'`, `ssh -R`, `tcpip-forward`) `host:port`. Restricted logins need
 * `permit-port-forwarding`; `permitopen` / `permitlisten` lists, when present, must contain
 * the address (`*` matches any host or port). This answers only what authentication allows:
 * forwarding code calls it **before** `localPortForwardingCallback` /
 * `reversePortForwardingCallback`, and a false answer refuses the request. Unix-socket
 * forwarding needs `isPermitted(ctx, 'port-forwarding')`.
 *
 * @example
 * ```ts
 * // in a direct-tcpip channel handler
 * if (!portForwardingAllowed(ctx, destHost, destPort, 'local')) {
 *   return newChannel.reject(ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, 'forwarding not permitted');
 * }
 * ```
 * @see sshd(8) `no-port-forwarding`, `permitopen`, `permitlisten`; PROTOCOL.certkeys `permit-port-forwarding`
 */
export function portForwardingAllowed(
  source: PermissionsSource,
  host: string,
  port: number,
  direction: 'local' | 'remote' = 'local',
): boolean {
  if (!isPermitted(source, 'port-forwarding')) return false;
  const key = direction === 'local' ? PERMISSION_KEYS.permitOpen : PERMISSION_KEYS.permitListen;
  const list = permsOf(source).extensions[key];
  if (list === undefined) return true;
  const want = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return list.split(/\s+/).some((entry) => {
    const e = splitHostPort(entry);
    return e !== undefined && (e.host === '*' || e.host === want) && (e.port === '*' || Number(e.port) === port);
  });
}

/** Sets `NAME=value` in an environ list, replacing an entry of the same name. */
function setEnv(environ: string[], line: string): void {
  const name = line.slice(0, line.indexOf('='));
  for (let i = environ.length - 1; i >= 0; i--) if (environ[i]!.startsWith(`${name}=`)) environ.splice(i, 1);
  environ.push(line);
}

/**
 * Applies the login's session restrictions when a shell, exec or subsystem starts, as sshd
 * does: `environment` entries go into `environ` (over the client's `env` requests); a forced
 * command replaces the request, which becomes an exec of it, and the client's command (or
 * subsystem name) is put in `environ` as `SSH_ORIGINAL_COMMAND` (not set for a shell).
 * @internal
 */
export function applySessionRestrictions<T extends 'shell' | 'exec' | 'subsystem'>(
  session: { readonly permissions: Permissions; readonly environ: string[] },
  type: T,
  arg: string,
): { type: T | 'exec'; arg: string } {
  const env = session.permissions.extensions[PERMISSION_KEYS.environment];
  if (env) for (const line of env.split('\n')) if (line.includes('=')) setEnv(session.environ, line);
  const forced = forcedCommand(session);
  if (forced === undefined) return { type, arg };
  const environ = session.environ;
  for (let i = environ.length - 1; i >= 0; i--) if (environ[i]!.startsWith('SSH_ORIGINAL_COMMAND=')) environ.splice(i, 1);
  if (type !== 'shell') environ.push(`SSH_ORIGINAL_COMMAND=${arg}`);
  return { type: 'exec', arg: forced };
}

/** Permissions restricted to exactly `permits` (a certificate's extensions, `restrict`). @internal */
export function restrictTo(perms: Permissions, permits: Iterable<PermitName>): void {
  perms.extensions[PERMISSION_KEYS.restricted] = '';
  for (const name of PERMIT_NAMES) delete perms.extensions[`permit-${name}`];
  for (const name of permits) perms.extensions[`permit-${name}`] = '';
}

/** The permits of `perms`: all of them when unrestricted. @internal */
export function permitsOf(perms: Permissions): PermitName[] {
  return PERMIT_NAMES.filter((n) => isPermitted(perms, n));
}

/** Keeps the entries of a space-separated list present in both (or the one list that exists). */
function intersectLists(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  const other = new Set(b.split(/\s+/));
  return a.split(/\s+/).filter((e) => other.has(e)).join(' ');
}

/**
 * Combines what two grants allow (a certificate and the `authorized_keys` line that trusts its
 * CA, or the factors of a multi-factor login), never widening either: restricted if either is,
 * with only the permits both grant; `permitopen`/`permitlisten` intersected; `environment`
 * entries from both (the first of a name wins). Different forced commands conflict.
 * @returns the combination, or `undefined` on a conflict (deny the login).
 * @internal
 */
export function mergePermissions(a: Permissions, b: Permissions): Permissions | undefined {
  const fa = forcedCommand(a);
  const fb = forcedCommand(b);
  if (fa !== undefined && fb !== undefined && fa !== fb) return undefined;
  const out: Permissions = {
    criticalOptions: { ...b.criticalOptions, ...a.criticalOptions },
    extensions: { ...b.extensions, ...a.extensions },
  };
  const restricted =
    Object.hasOwn(a.extensions, PERMISSION_KEYS.restricted) || Object.hasOwn(b.extensions, PERMISSION_KEYS.restricted);
  if (restricted) restrictTo(out, PERMIT_NAMES.filter((n) => isPermitted(a, n) && isPermitted(b, n)));
  for (const key of [PERMISSION_KEYS.permitOpen, PERMISSION_KEYS.permitListen]) {
    const merged = intersectLists(a.extensions[key], b.extensions[key]);
    if (merged !== undefined) out.extensions[key] = merged;
  }
  const envA = a.extensions[PERMISSION_KEYS.environment];
  const envB = b.extensions[PERMISSION_KEYS.environment];
  if (envA !== undefined && envB !== undefined) {
    const seen = new Set<string>();
    const lines = [...envA.split('\n'), ...envB.split('\n')].filter((l) => {
      const name = l.slice(0, l.indexOf('='));
      return !seen.has(name) && seen.add(name);
    });
    out.extensions[PERMISSION_KEYS.environment] = lines.join('\n');
  }
  return out;
}
