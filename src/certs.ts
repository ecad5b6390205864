/**
 * OpenSSH certificates (`*-cert-v01@openssh.com`): parsing with the CA signature verified,
 * and the checks a server makes before a certificate logs anyone in. `ssh2` can do neither
 * (it fails to parse certificate keys and mangles their signatures).
 *
 * @module
 */
import { KeyParseError } from './errors.js';
import { parsePublicKey, verifySignature, type PublicKey } from './keys.js';
import { matchCidrList } from './address-match.js';
import { BlobKey } from './internal/blob-key.js';

/**
 * An OpenSSH certificate: a public key signed by a certificate authority, with names
 * (principals), a validity window, and options. Found on `key.certificate` for a
 * certificate key, whose signature glidessh verified against `signatureKey` when parsing it.
 *
 * @example
 * ```ts
 * server.handle((s) => {
 *   const cert = s.publicKey?.certificate;
 *   if (cert) s.write(`key id ${cert.keyId}, serial ${cert.serial}, CA ${cert.signatureKey.fingerprint()}\n`);
 * });
 * ```
 * @see OpenSSH PROTOCOL.certkeys
 */
export interface Certificate {
  /** The random nonce the CA put in. */
  readonly nonce: Buffer;
  /** The certified key (the one the client proves it holds), e.g. an `ssh-ed25519` key. */
  readonly key: PublicKey;
  /** The CA's serial number (uint64). */
  readonly serial: bigint;
  /** `'user'` (SSH2_CERT_TYPE_USER) or `'host'`. */
  readonly certType: 'user' | 'host';
  /** The key id the CA set (`ssh-keygen -I`), for logs. */
  readonly keyId: string;
  /** The names the certificate is valid for (`ssh-keygen -n`); empty means none. */
  readonly principals: readonly string[];
  /** Valid from this time, seconds since the epoch (0: always). */
  readonly validAfter: bigint;
  /** Valid before this time, seconds since the epoch (`0xffffffffffffffffn`: forever). */
  readonly validBefore: bigint;
  /** Critical options by name, e.g. `{ 'force-command': 'uptime', 'source-address': '10.0.0.0/8' }`. */
  readonly criticalOptions: Readonly<Record<string, string>>;
  /** Extensions by name, e.g. `{ 'permit-pty': '' }`. */
  readonly extensions: Readonly<Record<string, string>>;
  /** The CA's public key. */
  readonly signatureKey: PublicKey;
  /** The CA's signature algorithm, e.g. `"ssh-ed25519"` or `"rsa-sha2-512"`. */
  readonly signatureAlgorithm: string;
  /** The CA's signature, as sent (`string algorithm, string signature`). */
  readonly signature: Buffer;
}

/** Plain key type and number of key fields of each supported certificate type. */
const CERT_TYPES: Readonly<Record<string, { plain: string; fields: number }>> = {
  'ssh-ed25519-cert-v01@openssh.com': { plain: 'ssh-ed25519', fields: 1 },
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp256', fields: 2 },
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp384', fields: 2 },
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': { plain: 'ecdsa-sha2-nistp521', fields: 2 },
  'ssh-rsa-cert-v01@openssh.com': { plain: 'ssh-rsa', fields: 2 },
};

/** As OpenSSH (SSHKEY_CERT_MAX_PRINCIPALS). */
const MAX_PRINCIPALS = 256;
const MAX_OPTIONS = 64;
/** `valid before` of a certificate valid forever. */
const FOREVER = 0xffff_ffff_ffff_ffffn;

/** Whether `type` names a certificate key (supported or not). @internal */
export function isCertificateType(type: string): boolean {
  return type.endsWith('-cert-v01@openssh.com');
}

/** RFC 4251 §5 reader; every overrun is a {@link KeyParseError}. */
class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  take(n: number): Buffer {
    if (this.buf.length - this.pos < n) throw new KeyParseError('Truncated certificate');
    return this.buf.subarray(this.pos, (this.pos += n));
  }
  uint32(): number {
    return this.take(4).readUInt32BE(0);
  }
  uint64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }
  bytes(): Buffer {
    return this.take(this.uint32());
  }
  /** A whole `string` field, length prefix included. */
  field(): Buffer {
    const start = this.pos;
    this.bytes();
    return this.buf.subarray(start, this.pos);
  }
  get done(): boolean {
    return this.pos === this.buf.length;
  }
}

/** Parses packed `string name, string data` tuples; data holding one string is unwrapped. */
function readTuples(buf: Buffer, what: string, strict: boolean): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const r = new Reader(buf);
  let count = 0;
  while (!r.done) {
    if (++count > MAX_OPTIONS) throw new KeyParseError(`Too many certificate ${what}`);
    const name = r.bytes().toString('utf8');
    const data = r.bytes();
    if (Object.hasOwn(out, name)) throw new KeyParseError(`Duplicate certificate ${what.slice(0, -1)} ${JSON.stringify(name)}`);
    let value = '';
    if (data.length > 0) {
      const inner = new Reader(data);
      try {
        value = inner.bytes().toString('utf8');
        if (!inner.done) throw new KeyParseError('trailing data');
      } catch (err) {
        if (strict) throw new KeyParseError(`Malformed certificate ${what.slice(0, -1)} ${JSON.stringify(name)}`, { cause: err });
        value = data.toString('latin1');
      }
    }
    out[name] = value;
  }
  return out;
}

class CertificateKey extends BlobKey implements PublicKey {
  constructor(
    type: string,
    blob: Buffer,
    readonly certificate: Certificate,
  ) {
    super(type, blob);
  }
}

/**
 * Parses a certificate key blob and verifies the CA's signature over it (as OpenSSH does when
 * it decodes a certificate). Supports Ed25519, ECDSA and RSA certificates signed by an
 * Ed25519, ECDSA or RSA CA.
 * @throws {@link KeyParseError} if the blob is malformed, of an unsupported type, or its
 *   signature does not verify with its own signature key.
 * @internal
 */
export function parseCertificateKey(blob: Buffer): PublicKey {
  const r = new Reader(blob);
  const type = r.bytes().toString('latin1');
  const spec = CERT_TYPES[type];
  if (!spec) throw new KeyParseError(`Unsupported certificate type ${JSON.stringify(type.slice(0, 64))}`);
  const nonce = Buffer.from(r.bytes());
  const keyFields = Array.from({ length: spec.fields }, () => r.field());
  const key = parsePublicKey(Buffer.concat([sshString(spec.plain), ...keyFields]));
  const serial = r.uint64();
  const typeCode = r.uint32();
  if (typeCode !== 1 && typeCode !== 2) throw new KeyParseError(`Unknown certificate type code ${typeCode}`);
  const keyId = r.bytes().toString('utf8');
  const principals: string[] = [];
  const pr = new Reader(r.bytes());
  while (!pr.done) {
    if (principals.length >= MAX_PRINCIPALS) throw new KeyParseError('Too many certificate principals');
    principals.push(pr.bytes().toString('utf8'));
  }
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  const criticalOptions = readTuples(r.bytes(), 'critical options', true);
  const extensions = readTuples(r.bytes(), 'extensions', false);
  r.bytes(); // reserved
  const caBlob = r.bytes();
  const signedEnd = r.pos;
  const signature = Buffer.from(r.bytes());
  if (!r.done) throw new KeyParseError('Trailing bytes after certificate');
  const signatureKey = parsePublicKey(caBlob);
  if (signatureKey.certificate) throw new KeyParseError('Certificate signed by a certificate');
  const algo = new Reader(signature).bytes().toString('latin1');
  if (!verifySignature(signatureKey, blob.subarray(0, signedEnd), signature)) {
    throw new KeyParseError('Certificate signature does not verify');
  }
  const cert: Certificate = Object.freeze({
    nonce,
    key,
    serial,
    certType: typeCode === 1 ? 'user' : 'host',
    keyId,
    principals: Object.freeze(principals),
    validAfter,
    validBefore,
    criticalOptions: Object.freeze({ ...criticalOptions }),
    extensions: Object.freeze({ ...extensions }),
    signatureKey,
    signatureAlgorithm: algo,
    signature,
  });
  return new CertificateKey(type, blob, cert);
}

function sshString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** Why a certificate (or key) does not log a user in; reported to `authFailedCallback`. */
export type CertificateProblem =
  | 'certificate-invalid'
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'certificate-principal'
  | 'source-address';

/** What {@link checkCertificate} checks a certificate against. */
export interface CertificateCheck {
  /** The user name, which must be one of the certificate's principals (unless `principals` is given). */
  user: string;
  /**
   * Names any one of which the certificate must list instead of `user` (an `authorized_keys`
   * `principals="…"` option).
   */
  principals?: readonly string[];
  /** The client's address, checked against a `source-address` critical option. */
  remoteAddress: string;
  /** The current time in milliseconds. @defaultValue `Date.now()` */
  now?: number;
}

/** Critical options glidessh understands; any other one rejects the certificate. */
const KNOWN_CRITICAL = new Set(['force-command', 'source-address']);

/**
 * Checks a parsed certificate as sshd does for a user login: a user certificate, not signed
 * with SHA-1 RSA (`ssh-rsa`, refused by OpenSSH's default `CASignatureAlgorithms`), within
 * its validity window, naming the user (or one of `principals`) — a certificate with no
 * principals names nobody — and with only critical options glidessh enforces
 * (`force-command`, `source-address`; the address must match). Whether its CA is trusted or
 * it is revoked is the caller's question (see {@link certificateHandler}).
 *
 * @returns `undefined` if the certificate may log the user in, else why not.
 * @example
 * ```ts
 * const problem = checkCertificate(key.certificate, { user: ctx.user, remoteAddress: ctx.remoteAddress });
 * if (problem) console.log(`rejected: ${problem}`);
 * ```
 * @see OpenSSH PROTOCOL.certkeys, sshd_config(5) TrustedUserCAKeys
 */
export function checkCertificate(cert: Certificate, check: CertificateCheck): CertificateProblem | undefined {
  if (cert.certType !== 'user' || cert.signatureAlgorithm === 'ssh-rsa') return 'certificate-invalid';
  const now = BigInt(Math.floor((check.now ?? Date.now()) / 1000));
  if (now < cert.validAfter) return 'certificate-not-yet-valid';
  if (cert.validBefore !== FOREVER && now >= cert.validBefore) return 'certificate-expired';
  const wanted = check.principals ?? [check.user];
  if (!cert.principals.some((p) => wanted.includes(p))) return 'certificate-principal';
  for (const name of Object.keys(cert.criticalOptions)) if (!KNOWN_CRITICAL.has(name)) return 'certificate-invalid';
  const source = cert.criticalOptions['source-address'];
  if (source !== undefined) {
    const match = matchCidrList(check.remoteAddress, source);
    if (match === undefined) return 'certificate-invalid';
    if (!match) return 'source-address';
  }
  return undefined;
}
