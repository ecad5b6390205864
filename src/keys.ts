/**
 * SSH public keys: wire blobs, `authorized_keys` lines, signatures (host private keys are in
 * host-keys.ts).
 *
 * @module
 */

import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { KeyParseError } from './errors.js';
import { BlobKey, keysEqual } from './internal/blob-key.js';
import { isCertificateType, parseCertificateKey, type Certificate } from './certs.js';

/**
 * A client or host public key.
 * @see RFC 4253 §6.6
 */
export interface PublicKey {
  /** Wire key type, e.g. `"ssh-ed25519"`, `"ecdsa-sha2-nistp256"`, `"ssh-rsa"`. */
  readonly type: string;
  /** The RFC 4253 §6.6 wire blob (a fresh copy). */
  marshal(): Buffer;
  /** `"SHA256:"` + unpadded base64 of the blob's SHA-256, as printed by `ssh-keygen -lf`. */
  fingerprint(): string;
  /** `"<type> <base64>"`, an `authorized_keys` line without comment or newline. */
  toAuthorizedKey(): string;
  /** Whether `other` is the same key; constant time, like {@link keysEqual}. */
  equals(other: PublicKey | undefined): boolean;
  /**
   * For an OpenSSH certificate key (`type` ending in `-cert-v01@openssh.com`), the certificate;
   * its CA signature was verified when it was parsed. `undefined` for a plain key.
   */
  readonly certificate?: Certificate;
}

/** One parsed `authorized_keys` line. */
export interface AuthorizedKey {
  /** The key. */
  key: PublicKey;
  /** The comment after the key data, trimmed; `""` if none. */
  comment: string;
  /** The raw options as written, quotes kept, e.g. `['no-pty', 'command="echo hi"']`. */
  options: string[];
}

// ---------------------------------------------------------------- wire format

/** Reads RFC 4251 §5 data types; every overrun is a {@link KeyParseError}, never a RangeError. */
class WireReader {
  #pos = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  uint32(): number {
    if (this.buf.length - this.#pos < 4) throw new KeyParseError(`Truncated ${this.what}`);
    this.#pos += 4;
    return this.buf.readUInt32BE(this.#pos - 4);
  }
  bytes(): Buffer {
    const len = this.uint32();
    const left = this.buf.length - this.#pos;
    if (len > left) throw new KeyParseError(`Truncated ${this.what}: field of ${len} bytes, ${left} left`);
    return this.buf.subarray(this.#pos, (this.#pos += len));
  }
  text(): string {
    return this.bytes().toString('latin1');
  }
  /** A non-negative mpint's magnitude, leading zeros removed. */
  mpint(): Buffer {
    const raw = this.bytes();
    if ((raw[0] ?? 0) & 0x80) throw new KeyParseError(`Negative integer in ${this.what}`);
    let i = 0;
    while (raw[i] === 0) i++;
    return raw.subarray(i);
  }
  end(): void {
    if (this.#pos !== this.buf.length) throw new KeyParseError(`Trailing bytes after ${this.what}`);
  }
}

/** An RFC 4251 §5 `string`. */
/** @internal */
export function sshString(data: Buffer | string): Buffer {
  const b = Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

// ---------------------------------------------------------------- public keys

type Curve = { name: string; crv: string; nodeCurve: string; size: number; hash: string };

/** ECDSA key types: SSH curve name, JWK `crv`, OpenSSL name, field size in bytes, hash (RFC 5656 §6.2.1). */
/** @internal */
export const CURVES: Readonly<Record<string, Curve>> = {
  'ecdsa-sha2-nistp256': { name: 'nistp256', crv: 'P-256', nodeCurve: 'prime256v1', size: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { name: 'nistp384', crv: 'P-384', nodeCurve: 'secp384r1', size: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { name: 'nistp521', crv: 'P-521', nodeCurve: 'secp521r1', size: 66, hash: 'sha512' },
};

/** RSA signature algorithms and their hashes (RFC 8332 §3). */
const RSA_HASH: Readonly<Record<string, string>> = {
  'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1',
};

/** Key type names OpenSSH knows, including ones this module does not support. */
const KEY_TYPE_NAME = new RegExp(
  '^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|ssh-dss|ssh-xmss@openssh\\.com' +
    '|sk-[a-z0-9-]+@openssh\\.com|[a-z0-9-]+-cert-v0[01]@openssh\\.com)$',
);

/** @internal A value for an error message: quoted, at most 64 characters. */
export function printable(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

class SshPublicKey extends BlobKey implements PublicKey {
  #keyObject: KeyObject | undefined;

  constructor(type: string, blob: Buffer, private readonly jwk: JsonWebKey) {
    super(type, blob);
  }
  keyObject(): KeyObject {
    try {
      return (this.#keyObject ??= createPublicKey({ key: this.jwk, format: 'jwk' }));
    } catch (cause) {
      throw new KeyParseError(`Invalid ${this.type} public key`, { cause });
    }
  }
}

/**
 * Parses a public key from its SSH wire blob.
 *
 * Supports `ssh-ed25519`, `ecdsa-sha2-nistp256/384/521` and `ssh-rsa` (1024 to 16384 bits, as
 * OpenSSH), and OpenSSH certificates of those keys (`*-cert-v01@openssh.com`, with the CA's
 * signature verified; see `key.certificate`). `sk-*` security keys and DSA are rejected.
 * An EC point that is not on its curve is only found when the key is first used (see
 * `publicKeyObject`).
 *
 * @example
 * ```ts
 * const key = parsePublicKey(blobFromClient);
 * console.log(key.fingerprint()); // SHA256:…
 * ```
 * @throws {@link KeyParseError} if the blob is truncated, malformed or of an unsupported type.
 * @see RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4, OpenSSH PROTOCOL.certkeys
 */
export function parsePublicKey(wire: Buffer): PublicKey {
  const type = wire.length >= 4 ? wire.subarray(4, 4 + wire.readUInt32BE(0)).toString('latin1') : '';
  return isCertificateType(type) ? parseCertificateKey(wire) : parseWire(wire);
}

function parseWire(wire: Buffer): SshPublicKey {
  const r = new WireReader(wire, 'public key');
  const type = r.text();
  const curve = CURVES[type];
  let jwk: JsonWebKey;
  if (type === 'ssh-ed25519') {
    const pub = r.bytes();
    if (pub.length !== 32) throw new KeyParseError(`Bad ssh-ed25519 public key length ${pub.length}`);
    jwk = { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url') };
  } else if (curve !== undefined) {
    const name = r.text();
    if (name !== curve.name) throw new KeyParseError(`Curve ${printable(name)} does not match key type ${type}`);
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 0x04) {
      throw new KeyParseError(`Bad ${type} public point (need uncompressed, ${1 + 2 * curve.size} bytes)`);
    }
    const [x, y] = [q.subarray(1, 1 + curve.size), q.subarray(1 + curve.size)];
    jwk = { kty: 'EC', crv: curve.crv, x: x.toString('base64url'), y: y.toString('base64url') };
  } else if (type === 'ssh-rsa') {
    const e = r.mpint();
    const n = r.mpint();
    const bits = n.length === 0 ? 0 : n.length * 8 - Math.clz32(n[0]!) + 24;
    if (e.length === 0 || bits < 1024 || bits > 16384) throw new KeyParseError(`Bad ssh-rsa key (${bits}-bit modulus)`);
    jwk = { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') };
  } else {
    throw new KeyParseError(`Unsupported key type ${printable(type)}`);
  }
  r.end();
  return new SshPublicKey(type, wire, jwk);
}

export { keysEqual };

/**
 * The node:crypto public `KeyObject` for a key, created on first use and cached on the key.
 * @internal
 * @throws {@link KeyParseError} if the key material is invalid (e.g. an EC point off its curve).
 */
export function publicKeyObject(key: PublicKey): KeyObject {
  return (key instanceof SshPublicKey ? key : parseWire(key.marshal())).keyObject();
}

/**
 * Checks an SSH signature (`string algorithm, string signature`) over `signedData` with `key`.
 *
 * The algorithm must suit the key: `ssh-ed25519`; the key's own `ecdsa-sha2-*` type; or
 * `rsa-sha2-512`, `rsa-sha2-256`, `ssh-rsa` (SHA-1) for RSA keys. Never throws.
 * @internal
 * @see RFC 4253 §6.6, RFC 5656 §3.1.2, RFC 8332 §3, RFC 8709 §6
 */
export function verifySignature(key: PublicKey, signedData: Buffer, signatureBlob: Buffer): boolean {
  // A certificate's holder signs with the certified key, under the plain algorithm name.
  if (key.certificate) return verifySignature(key.certificate.key, signedData, signatureBlob);
  try {
    const r = new WireReader(signatureBlob, 'signature');
    const algo = r.text();
    const sig = r.bytes();
    r.end();
    const own = key instanceof SshPublicKey ? key : parseWire(key.marshal());
    const keyObject = own.keyObject();
    const curve = CURVES[own.type];
    if (own.type === 'ssh-ed25519') {
      return algo === own.type && sig.length === 64 && cryptoVerify(null, signedData, keyObject, sig);
    }
    if (curve !== undefined) {
      if (algo !== own.type) return false;
      const sr = new WireReader(sig, 'ECDSA signature');
      const [rInt, sInt] = [sr.mpint(), sr.mpint()];
      sr.end();
      if (rInt.length > curve.size || sInt.length > curve.size) return false;
      const p1363 = Buffer.alloc(2 * curve.size); // r || s, each left-padded to the field size
      rInt.copy(p1363, curve.size - rInt.length);
      sInt.copy(p1363, 2 * curve.size - sInt.length);
      return cryptoVerify(curve.hash, signedData, { key: keyObject, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    const hash = RSA_HASH[algo];
    if (own.type !== 'ssh-rsa' || hash === undefined) return false;
    // Like OpenSSH, accept a signature shorter than the modulus by left-padding it with zeros.
    const modBytes = Math.ceil((keyObject.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    if (sig.length > modBytes) return false;
    const padded = Buffer.alloc(modBytes);
    sig.copy(padded, modBytes - sig.length);
    return cryptoVerify(hash, signedData, keyObject, padded);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- authorized_keys

/** One option: `name` or `name="value"`, where the value may hold `\"`. */
const OPTION = /^[A-Za-z0-9_.@-]+(?:="(?:\\"|[^"])*")?$/;

/** Splits the leading options field (ends at an unquoted blank) at unquoted commas; `\"` escapes. */
function readOptions(line: string): { options: string[]; rest: string } {
  const options: string[] = [];
  let quoted = false;
  let start = 0;
  let i = 0;
  for (; i <= line.length; i++) {
    const c = line[i];
    if (quoted && c === '\\' && line[i + 1] === '"') i++;
    else if (c === '"') quoted = !quoted;
    else if (quoted && c === undefined) throw new KeyParseError('Unterminated quoted string in key options');
    else if (!quoted && (c === ',' || c === ' ' || c === '\t' || c === undefined)) {
      const opt = line.slice(start, i);
      if (!OPTION.test(opt)) throw new KeyParseError(`Bad key option ${printable(opt)}`);
      options.push(opt);
      start = i + 1;
      if (c !== ',') break;
    }
  }
  return { options, rest: line.slice(i).trimStart() };
}

/** Strict base64 (canonical, padding optional); `undefined` if invalid. */
function decodeBase64(text: string | undefined): Buffer | undefined {
  if (text === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const buf = Buffer.from(text, 'base64');
  const canonical = buf.toString('base64');
  return canonical === text || canonical.replace(/=+$/, '') === text ? buf : undefined;
}

/** Whether `type` names a key: a known type name, or the type field of the blob in `b64`. */
function isKeyType(type: string, b64: string | undefined): boolean {
  if (KEY_TYPE_NAME.test(type)) return true;
  const blob = decodeBase64(b64);
  try {
    return blob !== undefined && new WireReader(blob, 'public key').text() === type;
  } catch {
    return false;
  }
}

/**
 * Parses one `authorized_keys` line: `[options] keytype base64 [comment]`.
 *
 * Options are returned raw, quotes kept; quoted values may contain commas, blanks and `\"`.
 *
 * @example
 * ```ts
 * const { key, options, comment } = parseAuthorizedKey('no-pty,command="uptime" ssh-ed25519 AAAA… me@host');
 * // options: ['no-pty', 'command="uptime"']
 * ```
 * @throws {@link KeyParseError} on a blank, comment or malformed line, or an unsupported key.
 * @see sshd(8), AUTHORIZED_KEYS FILE FORMAT
 */
export function parseAuthorizedKey(line: string): AuthorizedKey {
  let rest = line.trim();
  if (rest === '' || rest.startsWith('#')) throw new KeyParseError('No key on line');
  if (/[\r\n]/.test(rest)) throw new KeyParseError('Line break inside an authorized_keys line');
  let options: string[] = [];
  const [first = '', second] = rest.split(/[ \t]+/);
  if (!isKeyType(first, second)) ({ options, rest } = readOptions(rest));
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(rest);
  if (m === null) throw new KeyParseError('Missing key type or key data');
  const [, type = '', b64 = '', comment = ''] = m;
  if (!isKeyType(type, b64)) throw new KeyParseError(`Unsupported key type ${printable(type)}`);
  const blob = decodeBase64(b64);
  if (blob === undefined) throw new KeyParseError('Key data is not valid base64');
  const key = parsePublicKey(blob);
  if (key.type !== type) throw new KeyParseError(`Key type ${printable(type)} does not match key data (${key.type})`);
  return { key, comment: comment.trim(), options };
}

/**
 * Parses a whole `authorized_keys` file, skipping blank lines and `#` comments (LF or CRLF).
 * @throws {@link KeyParseError} for the first bad line; its message names the 1-based line number.
 * @see sshd(8), AUTHORIZED_KEYS FILE FORMAT
 */
export function parseAuthorizedKeys(text: string): AuthorizedKey[] {
  const out: AuthorizedKey[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    try {
      out.push(parseAuthorizedKey(trimmed));
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new KeyParseError(`authorized_keys line ${i + 1}: ${detail}`, { cause: err });
    }
  });
  return out;
}
