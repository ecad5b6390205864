/**
 * Every example starts with one command and serves the real OpenSSH client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ssh, startExample } from '../helpers/harness.js';


test('examples/hello greets the user and echoes the command', async (t) => {
  const port = (await startExample(t, 'hello.ts')).port;
  const r = await ssh(port, ['ls', '-l'], { user: 'ada' });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.equal(r.stdout.toString(), 'Hello ada!\nYou ran: ["ls","-l"]\n');
});

test('examples/subsystem serves "echo" and refuses exec', async (t) => {
  const port = (await startExample(t, 'subsystem.ts')).port;
  const r = await ssh(port, ['-s', 'echo'], { input: 'shout\n' });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.equal(r.stdout.toString(), 'SHOUT\n');
  const refused = await ssh(port, ['ls']);
  assert.notEqual(refused.code, 0);
});

test('examples/publickey admits the key in AUTHORIZED_KEYS only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'glidessh-ex-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const k of ['good', 'bad']) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
  const port = (await startExample(t, 'publickey.ts', { AUTHORIZED_KEYS: join(dir, 'good.pub') })).port;
  const fp = (await run('ssh-keygen', ['-lf', join(dir, 'good.pub')])).stdout.toString().split(' ')[1];
  const ok = await ssh(port, ['-i', join(dir, 'good'), '-o', 'IdentitiesOnly=yes', 'x'], { user: 'ada' });
  assert.equal(ok.code, 0, ok.stderr.toString());
  assert.equal(ok.stdout.toString(), `Hello ada, you logged in with ssh-ed25519 ${fp}\n`);
  const denied = await ssh(port, ['-i', join(dir, 'bad'), '-o', 'IdentitiesOnly=yes', 'x']);
  assert.equal(denied.code, 255);
  assert.match(denied.stderr.toString(), /Permission denied/);
  assert.ok(readFileSync(join(dir, 'good.pub'), 'utf8').startsWith('ssh-ed25519 '));
});

test('examples/timeouts echoes input sizes', async (t) => {
  const port = (await startExample(t, 'timeouts.ts')).port;
  const r = await ssh(port, [], { input: 'hello' });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.match(r.stdout.toString(), /you typed 5 bytes/);
});

test('examples/pty refuses a session without a pty and reports one with -tt', async (t) => {
  const port = (await startExample(t, 'pty.ts')).port;
  const r = await ssh(port, ['x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr.toString(), /No pty requested/);
  // A real terminal (script's pty) of 90x30; q is typed once the example is ready.
  const child = spawn('script', ['-qec', `stty rows 30 cols 90; ssh ${['-tt', ...sshArgs(port)].join(' ')} x`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('window: ')) child.stdin!.write('q');
    });
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, out);
  assert.match(out, /term: /);
  assert.match(out, /VINTR=3 /);
  assert.match(out, /window: 90 cols x 30 rows/);
});

function sshArgs(port: number): string[] {
  return ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-p', String(port), 'ada@127.0.0.1'];
}
