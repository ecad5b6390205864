import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import { KeyParseError } from '../../src/errors.js';
import { generateHostKey, loadHostKey } from '../../src/host-keys.js';
import {
  keysEqual,
  parseAuthorizedKey,
  parseAuthorizedKeys,
  parsePublicKey,
  publicKeyObject,
  verifySignature,
  type PublicKey,
} from '../../src/keys.js';

const dir = mkdtempSync(join(tmpdir(), 'glidessh-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Generated {
  name: string;
  type: string;
  priv: string;
  pubLine: string;
  fingerprint: string;
  path: string;
}

function keygen(name: string, args: string[], passphrase = ''): Generated {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-N', passphrase, '-C', `${name}@test host`, '-f', path]);
  const pubLine = readFileSync(`${path}.pub`, 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { name, type: pubLine.split(' ')[0]!, priv: readFileSync(path, 'utf8'), pubLine, fingerprint: fp, path };
}

const keys = {
  ed25519: keygen('ed25519', ['-t', 'ed25519']),
  p256: keygen('p256', ['-t', 'ecdsa', '-b', '256']),
  p384: keygen('p384', ['-t', 'ecdsa', '-b', '384']),
  p521: keygen('p521', ['-t', 'ecdsa', '-b', '521']),
  rsa: keygen('rsa', ['-t', 'rsa', '-b', '2048']),
};
const all = Object.values(keys);

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (d: Buffer | string): Buffer => {
  const b = Buffer.from(d);
  return Buffer.concat([u32(b.length), b]);
};
const mpint = (v: Buffer): Buffer => {
  let i = 0;
  while (i < v.length && v[i] === 0) i++;
  const m = v.subarray(i);
  return str(m.length > 0 && m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
};
const sigBlob = (algo: string, sig: Buffer): Buffer => Buffer.concat([str(algo), str(sig)]);
const keyOf = (g: Generated): PublicKey => parseAuthorizedKey(g.pubLine).key;
const nodePrivate = (g: Generated): crypto.KeyObject => {
  const parsed = ssh2.utils.parseKey(g.priv);
  assert.ok(!(parsed instanceof Error));
  return crypto.createPrivateKey(parsed.getPrivatePEM());
};
/** An SSH ECDSA signature from an IEEE-P1363 one. */
const ecdsaSsh = (type: string, p1363: Buffer): Buffer => {
  const half = p1363.length / 2;
  return sigBlob(type, Buffer.concat([mpint(p1363.subarray(0, half)), mpint(p1363.subarray(half))]));
};
const hashOf: Record<string, string> = {
  'ecdsa-sha2-nistp256': 'sha256',
  'ecdsa-sha2-nistp384': 'sha384',
  'ecdsa-sha2-nistp521': 'sha512',
};
/** A valid SSH signature by `g` over `data`, made with node or ssh2. */
function sign(g: Generated, data: Buffer, rsaAlgo = 'rsa-sha2-256'): Buffer {
  if (g.type === 'ssh-ed25519') {
    const sig = ssh2.utils.parseKey(g.priv);
    assert.ok(!(sig instanceof Error));
    return sigBlob('ssh-ed25519', sig.sign(data));
  }
  if (g.type === 'ssh-rsa') {
    const parsed = ssh2.utils.parseKey(g.priv);
    assert.ok(!(parsed instanceof Error));
    const hash = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' }[rsaAlgo]!;
    return sigBlob(rsaAlgo, parsed.sign(data, hash));
  }
  const p1363 = crypto.sign(hashOf[g.type]!, data, { key: nodePrivate(g), dsaEncoding: 'ieee-p1363' });
  return ecdsaSsh(g.type, p1363);
}
const throwsKeyParse = (fn: () => unknown, re?: RegExp): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KeyParseError, `expected KeyParseError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_KEY_PARSE');
    if (re) assert.match(err.message, re);
    return true;
  });
};

describe('public keys from ssh-keygen', () => {
  for (const g of all) {
    test(`${g.name}: round trip, fingerprint, comment`, () => {
      const ak = parseAuthorizedKey(g.pubLine);
      const [type, b64] = g.pubLine.split(' ');
      assert.equal(ak.key.type, type);
      assert.equal(ak.key.toAuthorizedKey(), `${type} ${b64}`);
      assert.equal(ak.key.fingerprint(), g.fingerprint);
      assert.equal(ak.comment, `${g.name}@test host`);
      assert.deepEqual(ak.options, []);
      const blob = ak.key.marshal();
      assert.deepEqual(blob, Buffer.from(b64!, 'base64'));
      blob.fill(0);
      assert.deepEqual(ak.key.marshal(), Buffer.from(b64!, 'base64'), 'marshal returns a copy');
      assert.equal(parsePublicKey(Buffer.from(b64!, 'base64')).fingerprint(), g.fingerprint);
      assert.equal(publicKeyObject(ak.key), publicKeyObject(ak.key), 'KeyObject is cached');
    });
  }

  test('keysEqual', () => {
    const a = keyOf(keys.ed25519);
    const a2 = keyOf(keys.ed25519);
    assert.equal(keysEqual(a, a2), true);
    assert.equal(a.equals(a2), true);
    for (const g of all.slice(1)) assert.equal(keysEqual(a, keyOf(g)), false);
    assert.equal(keysEqual(keyOf(keys.p256), keyOf(keys.p384)), false);
    assert.equal(keysEqual(a, undefined), false);
    assert.equal(keysEqual(undefined, a), false);
    assert.equal(keysEqual(undefined, undefined), false);
    assert.equal(a.equals(undefined), false);
  });
});

describe('verifySignature', () => {
  const data = Buffer.from('session id + userauth request');
  for (const g of all) {
    test(`${g.name}: valid verifies; tampering fails`, () => {
      const key = keyOf(g);
      const sig = sign(g, data);
      assert.equal(verifySignature(key, data, sig), true);
      assert.equal(verifySignature(key, Buffer.from('other data'), sig), false);
      const flipped = Buffer.from(sig);
      flipped.writeUInt8(flipped.readUInt8(flipped.length - 3) ^ 0x10, flipped.length - 3);
      assert.equal(verifySignature(key, data, flipped), false);
      assert.equal(verifySignature(key, data, Buffer.concat([sig, Buffer.from([0])])), false, 'trailing bytes');
      assert.equal(verifySignature(key, data, sig.subarray(0, sig.length - 1)), false, 'truncated');
      assert.equal(verifySignature(key, data, Buffer.alloc(0)), false);
      assert.equal(verifySignature(key, data, Buffer.from([0xff, 0xff, 0xff, 0xff])), false);
      const inner = new Uint8Array(sig.subarray(4 + sig.readUInt32BE(0) + 4));
      for (const wrong of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'rsa-sha2-512', 'ssh-dss', '']) {
        if (wrong === sig.subarray(4, 4 + sig.readUInt32BE(0)).toString()) continue;
        assert.equal(verifySignature(key, data, sigBlob(wrong, Buffer.from(inner))), false, `algo ${wrong}`);
      }
      // Another key's valid signature does not verify.
      const other = all.find((o) => o.type === g.type && o !== g) ?? (g === keys.ed25519 ? keys.rsa : keys.ed25519);
      assert.equal(verifySignature(keyOf(other), data, sig), false);
    });
  }

  test('works with a PublicKey implemented elsewhere, using its blob', () => {
    const real = keyOf(keys.p384);
    const foreign: PublicKey = {
      type: real.type,
      marshal: () => real.marshal(),
      fingerprint: () => real.fingerprint(),
      toAuthorizedKey: () => real.toAuthorizedKey(),
      equals: (o) => keysEqual(real, o),
    };
    assert.equal(verifySignature(foreign, data, sign(keys.p384, data)), true);
    assert.equal(keysEqual(foreign, real), true);
    assert.equal(publicKeyObject(foreign).asymmetricKeyType, 'ec');
    const lying: PublicKey = { ...foreign, type: 'ssh-ed25519' };
    assert.equal(verifySignature(lying, data, sign(keys.ed25519, data)), false);
  });

  test('rsa: rsa-sha2-512, rsa-sha2-256 and ssh-rsa; algorithm name must match the hash', () => {
    const key = keyOf(keys.rsa);
    for (const algo of ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']) {
      const sig = sign(keys.rsa, data, algo);
      assert.equal(verifySignature(key, data, sig), true, algo);
      const raw = sig.subarray(4 + sig.readUInt32BE(0) + 4);
      for (const other of ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'].filter((a) => a !== algo)) {
        assert.equal(verifySignature(key, data, sigBlob(other, raw)), false, `${algo} labelled ${other}`);
      }
    }
  });

  test('ecdsa: mpints with 0x00 prefix and with dropped leading zero bytes verify', () => {
    const g = keys.p256;
    const key = keyOf(g);
    const priv = nodePrivate(g);
    let highBit = 0;
    let short = 0;
    for (let i = 0; i < 20000 && (highBit < 3 || short < 2); i++) {
      const msg = Buffer.from(`message ${i}`);
      const p1363 = crypto.sign('sha256', msg, { key: priv, dsaEncoding: 'ieee-p1363' });
      const r = p1363.subarray(0, 32);
      const s = p1363.subarray(32);
      const isHigh = r[0]! >= 0x80 || s[0]! >= 0x80;
      const isShort = (r[0] === 0 && r[1]! < 0x80) || (s[0] === 0 && s[1]! < 0x80); // mpint under 32 bytes
      if (!isHigh && !isShort) continue;
      highBit += Number(isHigh);
      short += Number(isShort);
      const sig = ecdsaSsh(g.type, p1363);
      assert.equal(verifySignature(key, msg, sig), true, `verify ${p1363.toString('hex')}`);
      if (isShort && !isHigh) assert.ok(sig.length < 4 + g.type.length + 4 + 2 * (4 + 32), 'short');
    }
    assert.ok(highBit >= 3 && short >= 2, `saw ${highBit} high-bit and ${short} short values`);
    // A redundant extra zero byte is tolerated; an oversized or negative integer is not.
    const msg = Buffer.from('x');
    const p1363 = crypto.sign('sha256', msg, { key: priv, dsaEncoding: 'ieee-p1363' });
    const [r, s] = [p1363.subarray(0, 32), p1363.subarray(32)];
    const padded = Buffer.concat([str(Buffer.concat([Buffer.alloc(2), r])), str(Buffer.concat([Buffer.alloc(1), s]))]);
    assert.equal(verifySignature(key, msg, sigBlob(g.type, padded)), true);
    const oversize = Buffer.concat([str(Buffer.concat([Buffer.from([1]), r])), mpint(s)]);
    assert.equal(verifySignature(key, msg, sigBlob(g.type, oversize)), false);
    const negative = Buffer.concat([str(Buffer.concat([Buffer.from([0xff]), r])), mpint(s)]);
    assert.equal(verifySignature(key, msg, sigBlob(g.type, negative)), false);
    const extra = Buffer.concat([mpint(r), mpint(s), Buffer.from([0])]);
    assert.equal(verifySignature(key, msg, sigBlob(g.type, extra)), false);
  });
});

describe('authorized_keys', () => {
  const [edType, edB64] = keys.ed25519.pubLine.split(' ') as [string, string];

  test('options with quotes, escaped quotes, commas and spaces', () => {
    const line = `no-pty,command="echo \\"a,b\\"",from="10.0.0.0/8" ${edType} ${edB64} comment with  spaces`;
    const ak = parseAuthorizedKey(line);
    assert.deepEqual(ak.options, ['no-pty', 'command="echo \\"a,b\\""', 'from="10.0.0.0/8"']);
    assert.equal(ak.comment, 'comment with  spaces');
    assert.equal(ak.key.type, 'ssh-ed25519');
    assert.equal(ak.key.fingerprint(), keys.ed25519.fingerprint);
    const spaced = parseAuthorizedKey(`command="ls -la /tmp, /" ${keys.rsa.pubLine}`);
    assert.deepEqual(spaced.options, ['command="ls -la /tmp, /"']);
    assert.equal(spaced.key.type, 'ssh-rsa');
    assert.equal(parseAuthorizedKey(`restrict\t${edType} ${edB64}`).comment, '');
    assert.deepEqual(parseAuthorizedKey(`restrict\t${edType} ${edB64}`).options, ['restrict']);
  });

  test('a whole file with comments, blank lines and CRLF', () => {
    const text = [
      '# my keys',
      '',
      keys.ed25519.pubLine,
      '   ',
      `  no-agent-forwarding ${keys.p256.pubLine}  `,
      '#disabled ' + keys.rsa.pubLine,
      keys.rsa.pubLine,
      '',
    ].join('\r\n');
    const list = parseAuthorizedKeys(text);
    assert.deepEqual(
      list.map((k) => k.key.fingerprint()),
      [keys.ed25519.fingerprint, keys.p256.fingerprint, keys.rsa.fingerprint],
    );
    assert.deepEqual(list[1]!.options, ['no-agent-forwarding']);
    assert.equal(list[1]!.comment, 'p256@test host');
    assert.deepEqual(parseAuthorizedKeys(''), []);
    throwsKeyParse(() => parseAuthorizedKeys(`# x\n${keys.ed25519.pubLine}\n\nssh-ed25519 !!!notbase64\n`), /line 4\b/);
  });

  test('malformed lines throw KeyParseError', () => {
    const bad = [
      '',
      '# only a comment',
      edType,
      `${edType} !!!`,
      `${edType} ${edB64.slice(0, -8)}`,
      `ssh-rsa ${edB64}`,
      `ssh-foo ${str('ssh-foo').toString('base64')}`,
      `no-pty,command="unterminated ${edType} ${edB64}`,
      `no-pty,,x ${edType} ${edB64}`,
      `command=unquoted ${edType} ${edB64}`,
      `bogus-option`,
      `no-pty ssh-dss ${str('ssh-dss').toString('base64')}`,
      `no-pty ${edType} ${edB64} extra\nline`,
      `${keys.ed25519.pubLine}\n${keys.rsa.pubLine}`,
    ];
    for (const line of bad) throwsKeyParse(() => parseAuthorizedKey(line));
    throwsKeyParse(() => parseAuthorizedKey(`ssh-foo ${str('ssh-foo').toString('base64')}`), /unsupported key type/i);
    throwsKeyParse(() => parseAuthorizedKey(`${edType} ${edB64}x`), /base64/);
  });
});

describe('parsePublicKey on malformed blobs', () => {
  const ed = keyOf(keys.ed25519).marshal();
  const p256 = keyOf(keys.p256).marshal();
  const rsa = keyOf(keys.rsa).marshal();
  const cases: [string, Buffer, RegExp?][] = [
    ['empty', Buffer.alloc(0), /truncated/i],
    ['truncated', ed.subarray(0, ed.length - 1), /truncated/i],
    ['type length 0xFFFFFFFF', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x41]), /truncated/i],
    ['key length 0xFFFFFFFF', Buffer.concat([str('ssh-ed25519'), u32(0xffffffff)]), /truncated/i],
    ['trailing bytes', Buffer.concat([ed, Buffer.from([0])]), /trailing/i],
    ['short ed25519', Buffer.concat([str('ssh-ed25519'), str(Buffer.alloc(31))])],
    ['unknown type', Buffer.concat([str('ssh-foo'), str(Buffer.alloc(32))]), /unsupported key type/i],
    ['dss', Buffer.concat([str('ssh-dss'), str(Buffer.alloc(32))]), /unsupported key type/i],
    ['truncated cert', Buffer.concat([str('ssh-ed25519-cert-v01@openssh.com'), str(Buffer.alloc(32))]), /truncated certificate/i],
    ['dss cert', Buffer.concat([str('ssh-dss-cert-v01@openssh.com'), str(Buffer.alloc(32))]), /unsupported certificate type/i],
    ['sk', Buffer.concat([str('sk-ssh-ed25519@openssh.com'), str(Buffer.alloc(32))]), /unsupported key type/i],
    ['curve mismatch', Buffer.concat([str('ecdsa-sha2-nistp384'), p256.subarray(4 + 19)])],
    ['compressed point', Buffer.concat([str('ecdsa-sha2-nistp256'), str('nistp256'), str(Buffer.alloc(33, 2))])],
    ['negative rsa modulus', Buffer.concat([str('ssh-rsa'), mpint(Buffer.from([1, 0, 1])), str(Buffer.alloc(256, 0xff))])],
    ['tiny rsa modulus', Buffer.concat([str('ssh-rsa'), mpint(Buffer.from([1, 0, 1])), mpint(Buffer.alloc(64, 0x7f))])],
    ['rsa truncated', rsa.subarray(0, 100), /truncated/i],
  ];
  for (const [name, blob, re] of cases) {
    test(name, () => throwsKeyParse(() => parsePublicKey(blob), re));
  }

  test('an EC point off the curve fails when used, not with a crash', () => {
    const blob = Buffer.concat([str('ecdsa-sha2-nistp256'), str('nistp256'), str(Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))]);
    const key = parsePublicKey(blob);
    throwsKeyParse(() => publicKeyObject(key));
    assert.equal(verifySignature(key, Buffer.from('x'), sign(keys.p256, Buffer.from('x'))), false);
  });
});

describe('loadHostKey', () => {
  for (const g of all) {
    test(`accepts ssh-keygen OpenSSH ${g.name} private key`, () => {
      const hk = loadHostKey(g.priv);
      assert.equal(hk.type, g.type);
      assert.equal(hk.text, g.priv);
      assert.equal(loadHostKey(Buffer.from(g.priv)).type, g.type);
    });
  }

  const nodeKeys: [string, string, crypto.KeyPairKeyObjectResult][] = [
    ['ed25519', 'ssh-ed25519', crypto.generateKeyPairSync('ed25519')],
    ['P-256', 'ecdsa-sha2-nistp256', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['P-384', 'ecdsa-sha2-nistp384', crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['P-521', 'ecdsa-sha2-nistp521', crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' })],
    ['rsa', 'ssh-rsa', crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ];
  for (const [name, type, pair] of nodeKeys) {
    test(`accepts node PKCS#8 PEM ${name} and keeps the same public key`, () => {
      const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const hk = loadHostKey(pem);
      assert.equal(hk.type, type);
      const expected = crypto.createPublicKey(sshPublicPem(hk.text));
      assert.ok(expected.equals(pair.publicKey), 'converted key has the original public key');
      assert.equal(loadHostKey(hk.text).text, hk.text, 'converted text loads as is');
    });
  }

  test('accepts PKCS#1 RSA and SEC1 EC PEM as is', () => {
    const rsa = nodeKeys[4]![2].privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.deepEqual(loadHostKey(rsa), { type: 'ssh-rsa', text: rsa });
    const ec = nodeKeys[1]![2].privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    assert.deepEqual(loadHostKey(ec), { type: 'ecdsa-sha2-nistp256', text: ec });
  });

  test('converted Ed25519 OpenSSH text is readable by ssh-keygen', () => {
    const pem = nodeKeys[0]![2].privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const path = join(dir, 'converted');
    writeFileSync(path, loadHostKey(pem).text, { mode: 0o600 });
    chmodSync(path, 0o600);
    const pub = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
    const raw = nodeKeys[0]![2].publicKey.export({ format: 'jwk' }).x!;
    const blob = Buffer.concat([str('ssh-ed25519'), str(Buffer.from(raw, 'base64url'))]);
    assert.equal(pub.split(' ').slice(0, 2).join(' '), `ssh-ed25519 ${blob.toString('base64')}`);
  });

  test('rejects public keys, garbage, unsupported and encrypted keys', () => {
    throwsKeyParse(() => loadHostKey(keys.ed25519.pubLine), /public key/);
    throwsKeyParse(() => loadHostKey(nodeKeys[1]![2].publicKey.export({ type: 'spki', format: 'pem' }).toString()), /public key/);
    throwsKeyParse(() => loadHostKey('hello world'));
    throwsKeyParse(() => loadHostKey(Buffer.from([0, 1, 2, 3, 0xff])));
    throwsKeyParse(() => loadHostKey('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n'));
    const encrypted = keygen('encrypted', ['-t', 'ed25519'], 'secret');
    throwsKeyParse(() => loadHostKey(encrypted.priv), /encrypted/i);
    const encPem = nodeKeys[4]![2].privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
      .toString();
    throwsKeyParse(() => loadHostKey(encPem), /encrypted/i);
    const encPkcs1 = nodeKeys[4]![2].privateKey
      .export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
      .toString();
    throwsKeyParse(() => loadHostKey(encPkcs1), /encrypted/i);
    const x25519 = crypto.generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    throwsKeyParse(() => loadHostKey(x25519), /unsupported/i);
    const k1 = crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    throwsKeyParse(() => loadHostKey(k1.export({ type: 'pkcs8', format: 'pem' }).toString()), /unsupported/i);
  });

  test('rejects an OpenSSH key whose public half does not match the private half', () => {
    const good = generateHostKey().text;
    const b64 = good.split('\n').slice(1, -2).join('');
    const data = Buffer.from(b64, 'base64');
    const parsed = ssh2.utils.parseKey(good);
    assert.ok(!(parsed instanceof Error));
    const pub = parsed.getPublicSSH().subarray(-32);
    const second = data.indexOf(pub, data.indexOf(pub) + 1);
    assert.ok(second > 0);
    data.writeUInt8(data.readUInt8(second + 5) ^ 1, second + 5);
    const bad = `-----BEGIN OPENSSH PRIVATE KEY-----\n${data.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
    throwsKeyParse(() => loadHostKey(bad), /does not match/);
  });

  function sshPublicPem(text: string): string {
    const parsed = ssh2.utils.parseKey(text);
    assert.ok(!(parsed instanceof Error), String(parsed));
    assert.ok(parsed.getPublicSSH().length > 0);
    return parsed.getPublicPEM();
  }
});

describe('generateHostKey', () => {
  test('200 keys all parse with ssh2 as private ssh-ed25519 keys', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const hk = generateHostKey();
      assert.equal(hk.type, 'ssh-ed25519');
      const parsed = ssh2.utils.parseKey(hk.text);
      assert.ok(!(parsed instanceof Error), `key ${i}: ${String(parsed)}`);
      assert.equal(parsed.type, 'ssh-ed25519');
      assert.ok(parsed.isPrivateKey());
      seen.add(hk.text);
    }
    assert.equal(seen.size, 200);
  });

  test('a signature by a generated key verifies over its public blob', () => {
    const parsed = ssh2.utils.parseKey(generateHostKey().text);
    assert.ok(!(parsed instanceof Error));
    const data = Buffer.from('exchange hash');
    const key = parsePublicKey(parsed.getPublicSSH());
    const sig = sigBlob('ssh-ed25519', parsed.sign(data));
    assert.equal(verifySignature(key, data, sig), true);
    assert.equal(verifySignature(key, Buffer.from('other'), sig), false);
  });

  test('generated text is readable by ssh-keygen', () => {
    const path = join(dir, 'generated');
    const hk = generateHostKey();
    writeFileSync(path, hk.text, { mode: 0o600 });
    const pub = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
    const parsed = ssh2.utils.parseKey(hk.text);
    assert.ok(!(parsed instanceof Error));
    assert.equal(pub.split(' ')[1], parsed.getPublicSSH().toString('base64'));
  });
});
