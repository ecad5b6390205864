/**
 * Host private keys: loading PEM, PKCS#8 and OpenSSH keys (converting what ssh2 cannot read)
 * and generating an Ed25519 key.
 *
 * @module
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';
import { KeyParseError } from './errors.js';
import { CURVES, printable, sshString } from './keys.js';

/** A validated host private key. */
export interface HostKey {
  /** The SSH key type, e.g. `"ssh-ed25519"`, `"ecdsa-sha2-nistp256"`, `"ssh-rsa"`. */
  type: string;
  /** Key text that `ssh2` loads: the input as given, or its conversion when `ssh2` cannot read it. */
  text: string;
}


const HOST_KEY_TYPES = new Set(['ssh-ed25519', 'ssh-rsa', ...Object.keys(CURVES)]);
const ENCRYPTED = 'Encrypted host keys are not supported; decrypt the key first';

/** Encodes an unencrypted `openssh-key-v1` Ed25519 private key (OpenSSH PROTOCOL.key). */
function ed25519ToOpenSsh(privateKey: KeyObject, comment = ''): string {
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new KeyParseError('Bad Ed25519 key material');
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  // checkint twice, then the key: type, public, seed||public, comment; then padding 1, 2, 3… to 8 bytes.
  const keyPart = [sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)];
  const body = Buffer.concat([check, check, ...keyPart]);
  const padding = Buffer.from(Array.from({ length: (8 - (body.length % 8)) % 8 }, (_, i) => i + 1));
  // magic, cipher "none", kdf "none", empty kdf options, one key, its public blob, the private section.
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  const header = [magic, sshString('none'), sshString('none'), sshString(''), Buffer.from([0, 0, 0, 1])];
  const data = Buffer.concat([...header, sshString(pubBlob), sshString(Buffer.concat([body, padding]))]);
  const lines = data.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Rewrites a private key node:crypto reads (e.g. PKCS#8 PEM) into a form ssh2 reads. */
function convertPrivateKey(text: string, ssh2Error: Error): string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch (cause) {
    if ((cause as { code?: unknown }).code === 'ERR_MISSING_PASSPHRASE') throw new KeyParseError(ENCRYPTED, { cause });
    throw new KeyParseError(`Not a usable private key: ${ssh2Error.message}`, { cause });
  }
  const kind = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (kind === 'ed25519') return ed25519ToOpenSsh(key);
  if (kind === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }).toString();
  if (kind === 'ec' && Object.values(CURVES).some((c) => c.nodeCurve === curve)) {
    return key.export({ type: 'sec1', format: 'pem' }).toString();
  }
  throw new KeyParseError(`Unsupported host key type ${printable(String(curve ?? kind))}`);
}

/** Parses `text` with ssh2 and checks it is a supported, self-consistent private key. */
function checkWithSsh2(text: string): HostKey | Error {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) return parsed;
  if (!parsed.isPrivateKey() || parsed.getPrivatePEM() == null) {
    throw new KeyParseError('Expected a private host key, got a public key');
  }
  if (!HOST_KEY_TYPES.has(parsed.type)) throw new KeyParseError(`Unsupported host key type ${printable(parsed.type)}`);
  const probe = randomBytes(32);
  const hash = parsed.type === 'ssh-rsa' ? 'sha256' : undefined;
  const sig: Buffer | Error = parsed.sign(probe, hash);
  if (sig instanceof Error || parsed.verify(probe, sig, hash) !== true) {
    throw new KeyParseError('Private key is corrupt or does not match its public key');
  }
  return { type: parsed.type, text };
}

/**
 * Validates an unencrypted host private key and returns its type and text loadable by `ssh2`.
 *
 * Accepts OpenSSH (`BEGIN OPENSSH PRIVATE KEY`), PKCS#1 RSA, SEC1 EC and PKCS#8 PEM. Forms `ssh2`
 * cannot read are converted: Ed25519 to OpenSSH text, RSA to PKCS#1, EC to SEC1.
 *
 * @example
 * ```ts
 * const hostKey = loadHostKey(readFileSync('/etc/ssh/ssh_host_ed25519_key'));
 * new ssh2.Server({ hostKeys: [hostKey.text] });
 * ```
 * @throws {@link KeyParseError} for public keys, encrypted keys, unsupported types or garbage.
 */
export function loadHostKey(key: string | Buffer): HostKey {
  const text = typeof key === 'string' ? key : Buffer.isBuffer(key) ? key.toString('utf8') : undefined;
  if (text === undefined) throw new KeyParseError('Host key must be a string or Buffer');
  if (/-----BEGIN [A-Z0-9 ]*PUBLIC KEY-----/.test(text)) {
    throw new KeyParseError('Expected a private host key, got a public key');
  }
  const direct = checkWithSsh2(text);
  if (!(direct instanceof Error)) return direct;
  if (/passphrase/i.test(direct.message) || text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new KeyParseError(ENCRYPTED, { cause: direct });
  }
  const converted = checkWithSsh2(convertPrivateKey(text, direct));
  if (converted instanceof Error) {
    throw new KeyParseError(`Not a usable private key: ${converted.message}`, { cause: converted });
  }
  return converted;
}

/**
 * Generates a fresh Ed25519 host key as OpenSSH private key text.
 *
 * Encoded here rather than with `ssh2.utils.generateKeyPairSync`, whose Ed25519 output `ssh2`
 * itself rejects when the public key starts with a zero byte (about 1 key in 256).
 *
 * @example
 * ```ts
 * const server = new Server({ hostKeys: [generateHostKey().text] });
 * ```
 * @see OpenSSH PROTOCOL.key
 */
export function generateHostKey(): HostKey {
  for (let attempt = 0; attempt < 10; attempt++) {
    const text = ed25519ToOpenSsh(generateKeyPairSync('ed25519').privateKey);
    const parsed = ssh2.utils.parseKey(text);
    if (!(parsed instanceof Error) && parsed.type === 'ssh-ed25519' && parsed.isPrivateKey()) {
      return { type: 'ssh-ed25519', text };
    }
  }
  throw new KeyParseError('Could not generate an Ed25519 host key that ssh2 accepts');
}
