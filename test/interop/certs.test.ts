/**
 * Certificates and authorized_keys with the real OpenSSH client: `ssh-keygen -s` issues the
 * certificates, `ssh -o CertificateFile=…` logs in. Valid (Ed25519, ECDSA, RSA CAs), expired,
 * not yet valid, wrong principal, wrong CA, revoked, force-command and source-address cases;
 * an authorized_keys file edited while the server runs; no-pty against `ssh -tt`; a key then a
 * keyboard-interactive code (multi-factor). Also a tripwire: plain ssh2 still cannot handle
 * certificate logins itself.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, chmodSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import {
  authorizedKeysHandler,
  certificateHandler,
  passedAuthMethods,
  type AuthFailure,
  type PublicKeyHandler,
} from '../../src/index.js';
import { generateHostKey } from '../../src/host-keys.js';
import { run, SSH_ARGS, startServer, type ProcResult, type TestServer } from '../helpers/harness.js';
import { KeyLab, type LabCert } from '../helpers/certs.js';

const lab = new KeyLab();
after(() => lab.cleanup());
lab.key('ca_ed', 'ed25519');
lab.key('ca_ec', 'ecdsa');
lab.key('ca_rsa', 'rsa');
lab.key('rogue_ca', 'ed25519');
lab.key('u_ed', 'ed25519');
lab.key('u_ec', 'ecdsa');
lab.key('u_rsa', 'rsa');
lab.key('k1', 'ed25519');
lab.key('k2', 'ed25519');

const authorizedKeys = join(lab.dir, 'authorized_keys');
writeFileSync(authorizedKeys, `${lab.key('k1').line}\n`);

let ts: TestServer;
const failures: AuthFailure[] = [];
const keys = authorizedKeysHandler({ path: authorizedKeys });

before(async () => {
  const certs = certificateHandler({
    trustedUserCAKeys: ['ca_ed', 'ca_ec', 'ca_rsa'].map((n) => lab.key(n).key),
    isRevoked: (cert) => cert.serial === 666n,
  });
  const publicKeyHandler: PublicKeyHandler = async (ctx, key) => (await keys(ctx, key)) || (await certs(ctx, key));
  ts = await startServer({
    penalties: false, // many refused logins from 127.0.0.1 on purpose
    publicKeyHandler,
    authFailedCallback: (_ctx, f) => void failures.push(f),
    handler: (s) => {
      const cert = s.publicKey?.certificate;
      s.write(`${JSON.stringify({ user: s.user, type: s.publicKey?.type, keyId: cert?.keyId, cmd: s.rawCommand, env: s.environ, pty: !!s.pty })}\n`);
    },
  });
});
after(async () => {
  assert.equal(keys.watching, true);
  await ts.close();
  assert.equal(keys.watching, false, 'the authorized_keys watcher closed with the server');
});

/** `ssh` with one identity (and a certificate), run as `user`. */
function sshAs(user: string, identity: string, cert: LabCert | undefined, args: string[] = ['mycmd', 'arg']): Promise<ProcResult> {
  const id = ['-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', identity];
  if (cert) id.push('-o', `CertificateFile=${cert.path}`);
  return run('ssh', [...SSH_ARGS, ...id, '-p', String(ts.port), `${user}@127.0.0.1`, ...args], { timeoutMs: 10_000 });
}

function output(r: ProcResult): Record<string, unknown> {
  assert.equal(r.code, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

/** Logs in expecting a refusal, and returns the reasons reported for it. */
async function refused(identity: string, cert: LabCert, user = 'alice'): Promise<string[]> {
  failures.length = 0;
  const r = await sshAs(user, identity, cert);
  assert.equal(r.code, 255, r.stdout.toString());
  assert.match(r.stderr.toString(), /Permission denied/);
  return failures.map((f) => f.reason);
}

describe('OpenSSH user certificates', () => {
  for (const [user, ca, type] of [
    ['u_ed', 'ca_ed', 'ssh-ed25519-cert-v01@openssh.com'],
    ['u_ec', 'ca_ec', 'ecdsa-sha2-nistp256-cert-v01@openssh.com'],
    ['u_rsa', 'ca_rsa', 'ssh-rsa-cert-v01@openssh.com'],
  ] as const) {
    it(`a valid ${type} from the ${ca} CA logs in; the certificate is visible`, async () => {
      const cert = lab.cert(user, ca, { id: `${user}@corp`, principals: ['alice'], validity: '-5m:+1h' });
      const out = output(await sshAs('alice', lab.key(user).path, cert));
      assert.deepEqual(out, { user: 'alice', type, keyId: `${user}@corp`, cmd: 'mycmd arg', env: [], pty: false });
    });
  }

  it('an expired certificate is refused', async () => {
    assert.ok((await refused(lab.key('u_ed').path, lab.cert('u_ed', 'ca_ed', { validity: '20200101:20200102' }))).includes('certificate-expired'));
  });

  it('a certificate not valid yet is refused', async () => {
    assert.ok((await refused(lab.key('u_ed').path, lab.cert('u_ed', 'ca_ed', { validity: '+1d:+2d' }))).includes('certificate-not-yet-valid'));
  });

  it('a certificate for another principal is refused', async () => {
    assert.ok((await refused(lab.key('u_ed').path, lab.cert('u_ed', 'ca_ed', { principals: ['bob'] }))).includes('certificate-principal'));
  });

  it('a certificate from an untrusted CA is refused', async () => {
    assert.ok((await refused(lab.key('u_ed').path, lab.cert('u_ed', 'rogue_ca'))).includes('certificate-untrusted-ca'));
  });

  it('a revoked certificate is refused', async () => {
    assert.ok((await refused(lab.key('u_ed').path, lab.cert('u_ed', 'ca_ed', { serial: 666 }))).includes('certificate-revoked'));
  });

  it('force-command replaces the command; the original is in SSH_ORIGINAL_COMMAND', async () => {
    const cert = lab.cert('u_ed', 'ca_ed', { options: ['force-command=/usr/bin/menu --safe'] });
    const out = output(await sshAs('alice', lab.key('u_ed').path, cert, ['rm', '-rf', '/']));
    assert.equal(out.cmd, '/usr/bin/menu --safe');
    assert.deepEqual(out.env, ['SSH_ORIGINAL_COMMAND=rm -rf /']);
  });

  it('source-address is enforced against the client address', async () => {
    const ok = lab.cert('u_ed', 'ca_ed', { options: ['source-address=192.0.2.0/24,127.0.0.1/32'] });
    assert.equal(output(await sshAs('alice', lab.key('u_ed').path, ok)).user, 'alice');
    const elsewhere = lab.cert('u_ed', 'ca_ed', { options: ['source-address=10.0.0.0/8'] });
    assert.ok((await refused(lab.key('u_ed').path, elsewhere)).includes('source-address'));
  });

  it('a certificate without permit-pty gets no pty: ssh -tt fails as against sshd', async () => {
    const cert = lab.cert('u_ed', 'ca_ed', { options: ['clear'] });
    const r = await sshAs('alice', lab.key('u_ed').path, cert, ['-tt', 'x']);
    assert.equal(r.code, 255);
    assert.match(r.stderr.toString(), /PTY allocation request failed/);
    assert.equal(r.stdout.toString(), '', 'OpenSSH gives up before exec');
    const withPty = lab.cert('u_ed', 'ca_ed', { options: ['clear', 'permit-pty'] });
    const ok = await sshAs('alice', lab.key('u_ed').path, withPty, ['-tt', 'x']);
    assert.equal(ok.code, 0, ok.stderr.toString());
    assert.match(ok.stdout.toString(), /"pty":true/);
  });
});

describe('authorized_keys file edited while the server runs', () => {
  it('a key added, restricted with no-pty by an editor-style replace, then removed', async () => {
    const k2 = lab.key('k2').path;
    assert.equal((await sshAs('bob', k2, undefined)).code, 255, 'not in the file yet');
    appendFileSync(authorizedKeys, `${lab.key('k2').line}\n`);
    const tty = await sshAs('bob', k2, undefined, ['-tt', 'x']);
    assert.equal(tty.code, 0, tty.stderr.toString());
    assert.match(tty.stdout.toString(), /"pty":true/);
    writeFileSync(`${authorizedKeys}.new`, `${lab.key('k1').line}\nno-pty ${lab.key('k2').line}\n`);
    renameSync(`${authorizedKeys}.new`, authorizedKeys);
    const noPty = await sshAs('bob', k2, undefined, ['-tt', 'x']);
    assert.equal(noPty.code, 255, 'ssh -tt gives up when the pty is refused');
    assert.match(noPty.stderr.toString(), /PTY allocation request failed/);
    assert.equal(output(await sshAs('bob', k2, undefined, ['x'])).pty, false, 'the key still logs in without a pty');
    writeFileSync(authorizedKeys, `${lab.key('k1').line}\n`);
    assert.equal((await sshAs('bob', k2, undefined)).code, 255, 'removed again');
    assert.equal(output(await sshAs('bob', lab.key('k1').path, undefined)).user, 'bob');
  });
});

describe('multi-factor with OpenSSH', () => {
  it('a key, then a keyboard-interactive one-time code (SSH_ASKPASS answers the prompt)', async () => {
    const mfa = await startServer({
      penalties: false,
      publicKeyHandler: authorizedKeysHandler({ text: lab.key('k1').line }),
      keyboardInteractiveHandler: async (ctx, challenge) => {
        const [code] = await challenge('', 'Second factor', [{ prompt: 'One-time code: ', echo: false }]);
        return code === '424242' && passedAuthMethods(ctx).includes('publickey');
      },
      authMethods: [['publickey', 'keyboard-interactive']],
      handler: (s) => void s.write(`${passedAuthMethods(s.context).join('+')}\n`),
    });
    try {
      const login = async (code: string): Promise<ProcResult> => {
        const askpass = join(lab.dir, `askpass-${code}`);
        writeFileSync(askpass, `#!/bin/sh\necho ${code}\n`);
        chmodSync(askpass, 0o755);
        const args = ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
        args.push('-o', 'NumberOfPasswordPrompts=1', '-o', 'IdentitiesOnly=yes', '-i', lab.key('k1').path);
        return run('ssh', [...args, '-p', String(mfa.port), 'alice@127.0.0.1', 'x'], {
          timeoutMs: 10_000,
          env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
        });
      };
      const ok = await login('424242');
      assert.equal(ok.code, 0, ok.stderr.toString());
      assert.equal(ok.stdout.toString(), 'publickey+keyboard-interactive\n');
      const wrong = await login('000000');
      assert.equal(wrong.code, 255);
    } finally {
      await mfa.close();
    }
  });
});

describe('ssh2 alone (tripwire)', () => {
  it('still cannot parse certificate keys and hands on a signature that is not the bare Ed25519 one', async () => {
    const seen: Array<{ algo: string; parses: boolean; sigLength?: number }> = [];
    const server = new ssh2.Server({ hostKeys: [generateHostKey().text] }, (conn) => {
      conn.on('error', () => undefined);
      conn.on('authentication', (ctx) => {
        if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
        seen.push({ algo: ctx.key.algo, parses: !(ssh2.utils.parseKey(ctx.key.data) instanceof Error), sigLength: ctx.signature?.length });
        if (ctx.signature) ctx.reject(); else ctx.accept(); // PK_OK, then refuse the signed attempt
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const cert = lab.cert('u_ed', 'ca_ed');
      const port = (server.address() as AddressInfo).port;
      await run('ssh', [...SSH_ARGS, '-o', 'IdentitiesOnly=yes', '-i', lab.key('u_ed').path, '-o', `CertificateFile=${cert.path}`, '-p', String(port), 'alice@127.0.0.1', 'x'], { timeoutMs: 10_000 });
      const certAttempts = seen.filter((s) => s.algo === 'ssh-ed25519-cert-v01@openssh.com');
      assert.ok(certAttempts.length >= 2, JSON.stringify(seen));
      assert.ok(certAttempts.every((s) => !s.parses), 'ssh2 parses certificate keys now: key.certificate could use it');
      const signed = certAttempts.find((s) => s.sigLength !== undefined)!;
      assert.notEqual(signed.sigLength, 64, 'ssh2 now strips the signature header of certificate logins: check §3.1');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('examples/certificates', () => {
  it('admits a certificate from USER_CA, refuses a revoked one, and logs the failure', async (t) => {
    const caFile = `${lab.key('ca_ed').path}.pub`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/certificates.ts'], {
      env: { ...process.env, ADDR: '127.0.0.1:0', USER_CA: caFile, REVOKED: '13' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`example did not start: ${out}`)), 15_000);
      const check = (): void => {
        const m = /listening on [^\s:]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => reject(new Error(`example exited with ${code}: ${out}`)));
    });
    const login = (cert: LabCert): Promise<ProcResult> =>
      run('ssh', [...SSH_ARGS, '-o', 'IdentitiesOnly=yes', '-i', lab.key('u_ed').path, '-o', `CertificateFile=${cert.path}`,
        '-p', String(port), 'alice@127.0.0.1', 'whoami'], { timeoutMs: 10_000 });
    const ok = await login(lab.cert('u_ed', 'ca_ed', { id: 'alice@laptop', serial: 7 }));
    assert.equal(ok.code, 0, ok.stderr.toString());
    assert.match(ok.stdout.toString(), /^Hello alice: certificate "alice@laptop", serial 7, CA SHA256:/);
    assert.match(ok.stdout.toString(), /command: whoami; pty permitted\n$/);
    const bad = await login(lab.cert('u_ed', 'ca_ed', { serial: 13 }));
    assert.equal(bad.code, 255);
    const deadline = Date.now() + 5000;
    while (!/Failed publickey for alice from 127\.0\.0\.1 port \d+: certificate-revoked/.test(out) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(out, /Failed publickey for alice from 127\.0\.0\.1 port \d+: certificate-revoked/);
  });
});
