/**
 * OpenSSH certificates made by the real ssh-keygen: parsing (Ed25519, ECDSA and RSA keys and
 * CAs), CA signature verification, user signature verification with the certified key,
 * checkCertificate, and certificateHandler.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import {
  certificateHandler,
  checkCertificate,
  KeyParseError,
  parseAuthorizedKey,
  parsePublicKey,
  type Context,
  type Permissions,
} from '../../src/index.js';
import { verifySignature } from '../../src/keys.js';
import { forcedCommand, isPermitted } from '../../src/restrictions.js';
import { KeyLab } from '../helpers/certs.js';

const lab = new KeyLab();
after(() => lab.cleanup());
lab.key('ca_ed', 'ed25519');
lab.key('ca_ec', 'ecdsa');
lab.key('ca_rsa', 'rsa');
lab.key('other_ca', 'ed25519');
lab.key('u_ed', 'ed25519');
lab.key('u_ec', 'ecdsa384');
lab.key('u_rsa', 'rsa');

const NOW = Date.now();

/** A context as the auth handlers see it. */
function fakeCtx(user = 'alice', remoteAddress = '127.0.0.1'): Context & { permissions: Permissions } {
  return {
    user,
    remoteAddress,
    permissions: { criticalOptions: {}, extensions: {} },
    server: new EventEmitter(),
  } as unknown as Context & { permissions: Permissions };
}

describe('parsing certificates made by ssh-keygen', () => {
  const cases: Array<[string, string, string, string]> = [
    ['u_ed', 'ca_ed', 'ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519'],
    ['u_ed', 'ca_ec', 'ssh-ed25519-cert-v01@openssh.com', 'ecdsa-sha2-nistp256'],
    ['u_ed', 'ca_rsa', 'ssh-ed25519-cert-v01@openssh.com', 'rsa-sha2-512'],
    ['u_ec', 'ca_ed', 'ecdsa-sha2-nistp384-cert-v01@openssh.com', 'ssh-ed25519'],
    ['u_rsa', 'ca_rsa', 'ssh-rsa-cert-v01@openssh.com', 'rsa-sha2-512'],
  ];
  for (const [user, ca, type, sigAlg] of cases) {
    it(`${type} signed by a ${ca} CA (${sigAlg}) parses with every field`, () => {
      const c = lab.cert(user, ca, {
        id: 'id-42',
        principals: ['alice', 'bob'],
        serial: 42,
        validity: '20200101:20991231',
        options: ['force-command=echo hi', 'source-address=127.0.0.1/32,::1'],
      });
      const key = c.key;
      assert.equal(key.type, type);
      const cert = key.certificate!;
      assert.ok(cert, 'key.certificate is set');
      assert.equal(cert.certType, 'user');
      assert.equal(cert.keyId, 'id-42');
      assert.equal(cert.serial, 42n);
      assert.deepEqual(cert.principals, ['alice', 'bob']);
      assert.equal(cert.validAfter, BigInt(Math.floor(new Date(2020, 0, 1).getTime() / 1000)));
      assert.ok(cert.validBefore > cert.validAfter);
      assert.deepEqual({ ...cert.criticalOptions }, { 'force-command': 'echo hi', 'source-address': '127.0.0.1/32,::1' });
      assert.deepEqual(Object.keys(cert.extensions).sort(), [
        'permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc',
      ]);
      assert.equal(cert.signatureAlgorithm, sigAlg);
      assert.ok(cert.signatureKey.equals(lab.key(ca).key), 'signatureKey is the CA');
      assert.ok(cert.key.equals(lab.key(user).key), 'key is the certified key');
      assert.equal(cert.key.certificate, undefined);
      assert.equal(cert.nonce.length, 32);
      // Round trips: the blob, the authorized_keys form, the fingerprint ssh-keygen prints.
      assert.ok(parsePublicKey(key.marshal()).equals(key));
      assert.equal(key.toAuthorizedKey(), c.line.split(' ').slice(0, 2).join(' '));
      assert.match(key.fingerprint(), /^SHA256:[A-Za-z0-9+/]{43}$/);
    });
  }

  it('a certificate whose CA signature does not verify is rejected when parsed', () => {
    const blob = lab.cert('u_ed', 'ca_ed').key.marshal();
    const keyIdAt = blob.indexOf(Buffer.from('u_ed-id'));
    blob[keyIdAt] = blob[keyIdAt]! ^ 1; // change the key id: the CA's signature no longer covers it
    assert.throws(() => parsePublicKey(blob), (err: unknown) => err instanceof KeyParseError && /signature/.test(err.message));
    const sigBlob = lab.cert('u_ed', 'ca_ed').key.marshal();
    sigBlob[sigBlob.length - 1] = sigBlob[sigBlob.length - 1]! ^ 1;
    assert.throws(() => parsePublicKey(sigBlob), KeyParseError);
  });

  it('truncated or padded certificates are KeyParseErrors, never RangeErrors', () => {
    const blob = lab.cert('u_ec', 'ca_ec').key.marshal();
    for (let n = 0; n < blob.length; n += 7) assert.throws(() => parsePublicKey(blob.subarray(0, n)), KeyParseError);
    assert.throws(() => parsePublicKey(Buffer.concat([blob, Buffer.from([0])])), KeyParseError);
  });

  it('unknown critical options and extensions are kept; a host certificate is certType host', () => {
    const c = lab.cert('u_ed', 'ca_ed', { options: ['clear', 'critical:foo=bar', 'extension:x@example.com=val', 'permit-pty'] });
    assert.deepEqual({ ...c.key.certificate!.criticalOptions }, { foo: 'bar' });
    assert.deepEqual({ ...c.key.certificate!.extensions }, { 'permit-pty': '', 'x@example.com': 'val' });
    const host = lab.cert('u_ed', 'ca_ed', { host: true }).key.certificate!;
    assert.equal(host.certType, 'host');
    assert.equal(checkCertificate(host, { user: 'alice', remoteAddress: '127.0.0.1' }), 'certificate-invalid');
    assert.equal(parseAuthorizedKey(lab.cert('u_ed', 'ca_ed').line).key.certificate!.certType, 'user');
  });

  it('the client signs with the certified key, under the plain algorithm name', () => {
    const c = lab.cert('u_ed', 'ca_ed').key;
    const parsed = ssh2.utils.parseKey(readFileSync(lab.key('u_ed').path, 'utf8')) as ssh2.ParsedKey;
    const data = Buffer.from('session id and userauth request');
    const raw = sign(null, data, parsed.getPrivatePEM());
    const blob = (algo: string, sig: Buffer): Buffer => {
      const a = Buffer.from(algo);
      const out = Buffer.alloc(8 + a.length + sig.length);
      out.writeUInt32BE(a.length, 0);
      a.copy(out, 4);
      out.writeUInt32BE(sig.length, 4 + a.length);
      sig.copy(out, 8 + a.length);
      return out;
    };
    assert.equal(verifySignature(c, data, blob('ssh-ed25519', raw)), true);
    assert.equal(verifySignature(c, Buffer.from('other data'), blob('ssh-ed25519', raw)), false);
    assert.equal(verifySignature(c, data, blob('ssh-ed25519-cert-v01@openssh.com', raw)), false);
    const otherCert = lab.cert('u_rsa', 'ca_ed').key;
    assert.equal(verifySignature(otherCert, data, blob('ssh-ed25519', raw)), false, 'another certified key');
  });
});

describe('checkCertificate', () => {
  const check = (spec: Parameters<KeyLab['cert']>[2], over: Partial<Parameters<typeof checkCertificate>[1]> = {}) =>
    checkCertificate(lab.cert('u_ed', 'ca_ed', spec).key.certificate!, { user: 'alice', remoteAddress: '127.0.0.1', now: NOW, ...over });

  it('accepts a valid certificate naming the user', () => assert.equal(check({ validity: '-5m:+1h' }), undefined));
  it('expired', () => assert.equal(check({ validity: '20200101:20200102' }), 'certificate-expired'));
  it('not yet valid', () => assert.equal(check({ validity: '+1d:+2d' }), 'certificate-not-yet-valid'));
  it('the clock decides the window', () => {
    assert.equal(check({ validity: '20200101:20200102' }, { now: Date.UTC(2020, 0, 1, 12) }), undefined);
  });
  it('wrong principal, and no principals at all', () => {
    assert.equal(check({ principals: ['bob'] }), 'certificate-principal');
    assert.equal(check({ principals: ['bob'] }, { principals: ['carol', 'bob'] }), undefined, 'principals="…" instead of the user');
    assert.equal(check({ principals: ['alice'] }, { principals: ['carol'] }), 'certificate-principal');
  });
  it('source-address: IPv4, IPv6, IPv4-mapped; a malformed list rejects', () => {
    const spec = { options: ['source-address=10.0.0.0/8,2001:db8::/32'] };
    assert.equal(check(spec, { remoteAddress: '10.1.2.3' }), undefined);
    assert.equal(check(spec, { remoteAddress: '::ffff:10.1.2.3' }), undefined);
    assert.equal(check(spec, { remoteAddress: '2001:db8::5' }), undefined);
    assert.equal(check(spec, { remoteAddress: '127.0.0.1' }), 'source-address');
    assert.equal(check(spec, { remoteAddress: '2001:db9::5' }), 'source-address');
  });
  it('an unknown critical option rejects; an unknown extension does not', () => {
    assert.equal(check({ options: ['critical:verify-required'] }), 'certificate-invalid');
    assert.equal(check({ options: ['extension:whatever@example.com'] }), undefined);
  });
  it('a CA signature made with SHA-1 RSA (ssh-rsa) is refused, as by OpenSSH', () => {
    const c = lab.cert('u_ed', 'ca_rsa', { signatureAlgorithm: 'ssh-rsa' }).key.certificate!;
    assert.equal(c.signatureAlgorithm, 'ssh-rsa');
    assert.equal(checkCertificate(c, { user: 'alice', remoteAddress: '127.0.0.1' }), 'certificate-invalid');
    const c256 = lab.cert('u_ed', 'ca_rsa', { signatureAlgorithm: 'rsa-sha2-256' }).key.certificate!;
    assert.equal(checkCertificate(c256, { user: 'alice', remoteAddress: '127.0.0.1' }), undefined);
  });
});

describe('certificateHandler', () => {
  const handler = certificateHandler({
    trustedUserCAKeys: [lab.key('ca_ec').key, `# comment\n${lab.key('ca_ed').line}\n`],
    isRevoked: (cert) => cert.serial === 666n,
    clock: () => NOW,
  });

  it('accepts a trusted certificate and grants its critical options and extensions', async () => {
    const ctx = fakeCtx();
    const key = lab.cert('u_ed', 'ca_ed', { options: ['clear', 'permit-pty', 'force-command=uptime'] }).key;
    assert.equal(await handler(ctx, key), true);
    assert.equal(forcedCommand(ctx), 'uptime');
    assert.equal(isPermitted(ctx, 'pty'), true);
    assert.equal(isPermitted(ctx, 'port-forwarding'), false);
    assert.equal(isPermitted(ctx, 'agent-forwarding'), false);
  });

  it('refuses plain keys, unknown CAs, revoked and invalid certificates, writing no permissions', async () => {
    for (const key of [
      lab.key('u_ed').key,
      lab.cert('u_ed', 'other_ca').key,
      lab.cert('u_ed', 'ca_ed', { serial: 666 }).key,
      lab.cert('u_ed', 'ca_ed', { principals: ['root'] }).key,
      lab.cert('u_ed', 'ca_ec', { validity: '20200101:20200102' }).key,
    ]) {
      const ctx = fakeCtx();
      assert.equal(await handler(ctx, key), false, key.type);
      assert.deepEqual(ctx.permissions, { criticalOptions: {}, extensions: {} });
    }
  });

  it('trustedUserCAKeysFile is read again when it changes; the watcher closes with the server', async () => {
    const file = join(lab.dir, 'user_ca.pub');
    writeFileSync(file, `${lab.key('other_ca').line}\n`);
    const h = certificateHandler({ trustedUserCAKeysFile: file, onError: () => undefined });
    const ctx = fakeCtx();
    const key = lab.cert('u_ed', 'ca_ed').key;
    assert.equal(await h(ctx, key), false);
    assert.equal(h.watching, true);
    writeFileSync(file, `${lab.key('other_ca').line}\n${lab.key('ca_ed').line}\n`);
    const ctx2 = fakeCtx();
    assert.equal(await h(ctx2, key), true);
    ctx.server.emit('close');
    assert.equal(h.watching, true, 'another server still uses it');
    ctx2.server.emit('close');
    assert.equal(h.watching, false);
  });
});
