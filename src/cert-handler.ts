/**
 * A ready `publicKeyHandler` for OpenSSH user certificates signed by trusted CAs (sshd's
 * `TrustedUserCAKeys`, wish's `WithTrustedUserCAKeys`).
 *
 * @module
 */
import { checkCertificate, type Certificate } from './certs.js';
import type { Context } from './context.js';
import type { PublicKeyHandler } from './hooks.js';
import { keysEqual, parseAuthorizedKeys, type PublicKey } from './keys.js';
import { noteAuthFailure } from './auth-policy.js';
import { restrictTo, type PermitName } from './restrictions.js';
import type { MaybePromise, Permissions } from './types.js';
import { WatchedFile } from './internal/watched-file.js';

/**
 * Decides whether a certificate is revoked (a serial or key id on a list, a KRL lookup…).
 * Anything but `false` rejects the certificate, and so does a throw.
 */
export type RevocationCheck = (cert: Certificate, ctx: Context) => MaybePromise<boolean>;

/** Extension names that grant a {@link PermitName}. */
const EXTENSION_PERMITS: Record<string, PermitName> = {
  'permit-pty': 'pty',
  'permit-port-forwarding': 'port-forwarding',
  'permit-agent-forwarding': 'agent-forwarding',
  'permit-X11-forwarding': 'X11-forwarding',
  'permit-user-rc': 'user-rc',
};

/**
 * What a certificate grants, as `ctx.permissions`: its critical options and extensions
 * (like x/crypto's `CertChecker`), restricted to its `permit-*` extensions.
 * @internal
 */
export function certificatePermissions(cert: Certificate): Permissions {
  const p: Permissions = { criticalOptions: { ...cert.criticalOptions }, extensions: { ...cert.extensions } };
  restrictTo(
    p,
    Object.keys(cert.extensions).flatMap((e) => (Object.hasOwn(EXTENSION_PERMITS, e) ? [EXTENSION_PERMITS[e]!] : [])),
  );
  return p;
}

/** Options of {@link certificateHandler}. */
export interface CertificateHandlerOptions {
  /**
   * Trusted CA public keys: `PublicKey`s, or `"type base64 [comment]"` lines (one string may
   * hold many lines; `#` comments allowed).
   */
  trustedUserCAKeys?: Array<PublicKey | string> | string;
  /** A file of trusted CA public keys, one per line (sshd `TrustedUserCAKeys`); re-read when it changes. */
  trustedUserCAKeysFile?: string;
  /** Asked for every certificate that passed the other checks; anything but `false` rejects it. */
  isRevoked?: RevocationCheck;
  /** The current time in ms, for the validity window. @defaultValue `Date.now` */
  clock?: () => number | Date;
  /** Told about a CA file that cannot be read or parsed (then it trusts no CA). Unset: `process.emitWarning`. */
  onError?: (err: Error) => void;
}

/** A `publicKeyHandler` for certificates, see {@link certificateHandler}. */
export interface CertificateHandler extends PublicKeyHandler {
  /** Whether a watcher on `trustedUserCAKeysFile` is open (closed with the server). */
  readonly watching: boolean;
  /** Closes the file watcher now; the handler keeps working. */
  close(): void;
}

function toKeys(list: Array<PublicKey | string> | string): PublicKey[] {
  return (Array.isArray(list) ? list : [list]).flatMap((k) => (typeof k === 'string' ? parseAuthorizedKeys(k).map((e) => e.key) : [k]));
}

/**
 * Builds a `publicKeyHandler` that accepts OpenSSH user certificates signed by a trusted CA,
 * with every check sshd makes: the CA's signature (verified when the key is parsed), a trusted
 * CA, a user certificate naming `ctx.user` among its principals, the validity window (with
 * `clock`), `source-address` against the client's address, no unknown critical option, and
 * `isRevoked`. Plain keys are refused. The certificate's critical options and extensions
 * become `ctx.permissions`, and the session enforces them: `force-command` replaces the
 * command, and only `permit-pty`, `permit-port-forwarding`, `permit-agent-forwarding`
 * (and `permit-X11-forwarding`, though X11 is never offered) are allowed.
 *
 * Combine it with an `authorized_keys` handler for plain keys:
 * `publicKeyHandler: async (ctx, key) => (await keys(ctx, key)) || (await certs(ctx, key))`.
 *
 * @throws {@link KeyParseError} if `trustedUserCAKeys` holds a bad key.
 * @example
 * ```ts
 * const server = new Server({
 *   publicKeyHandler: certificateHandler({ trustedUserCAKeysFile: '/etc/ssh/user_ca.pub' }),
 * });
 * server.handle((s) => s.write(`hello ${s.user}, key id ${s.publicKey?.certificate?.keyId}\n`));
 * ```
 * @see OpenSSH PROTOCOL.certkeys, sshd_config(5) TrustedUserCAKeys
 */
export function certificateHandler(options: CertificateHandlerOptions): CertificateHandler {
  const onError = options.onError ?? ((err: Error) => process.emitWarning(err));
  const fixed = options.trustedUserCAKeys !== undefined ? toKeys(options.trustedUserCAKeys) : [];
  const file =
    options.trustedUserCAKeysFile !== undefined
      ? new WatchedFile(options.trustedUserCAKeysFile, (t) => toKeys(t), onError, [] as PublicKey[])
      : undefined;
  const clock = options.clock ?? Date.now;

  const handler = async (ctx: Context, key: PublicKey): Promise<boolean> => {
    const deny = (reason: string): false => {
      noteAuthFailure(ctx, reason);
      return false;
    };
    const cert = key.certificate;
    if (!cert) return deny('key-not-authorized');
    const cas = file ? [...fixed, ...(await file.current(ctx.server))] : fixed;
    if (!cas.some((ca) => keysEqual(ca, cert.signatureKey))) return deny('certificate-untrusted-ca');
    const problem = checkCertificate(cert, { user: ctx.user, remoteAddress: ctx.remoteAddress, now: Number(clock()) });
    if (problem) return deny(problem);
    if (options.isRevoked && (await options.isRevoked(cert, ctx)) !== false) return deny('certificate-revoked');
    const granted = certificatePermissions(cert);
    Object.assign(ctx.permissions.criticalOptions, granted.criticalOptions);
    Object.assign(ctx.permissions.extensions, granted.extensions);
    return true;
  };
  return Object.defineProperties(handler, {
    watching: { get: () => file?.watching ?? false, enumerable: true },
    close: { value: () => file?.close(), enumerable: true },
  }) as CertificateHandler;
}
