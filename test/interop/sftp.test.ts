/**
 * SFTP and SCP with real clients: OpenSSH `sftp -b`, `scp` (SFTP and legacy `-O`), PuTTY
 * `psftp -b` and `pscp` (`-sftp`, `-scp`); files of 0 B, 1 B and 100 MiB checked by SHA-256
 * (the 100 MiB one once per client family); path escapes; and examples/sftp.ts. A missing
 * PuTTY fails under CI and is skipped elsewhere.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, SSH_ARGS, startServer, type ProcResult, type TestServer } from '../helpers/harness.js';
import { scpHandler, sftpHandler, type FileServerOptions } from '../../src/index.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const shaFile = (p: string): string => sha(readFileSync(p));
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function need(t: TestContext, tool: string): boolean {
  if (has(tool)) return true;
  const msg = `${tool} is not installed (Debian: putty-tools)`;
  if (process.env.CI) assert.fail(`${msg}; CI must install it`);
  t.skip(msg);
  return false;
}

let tmp: string;
let local: string;
let hostKey: Buffer;
let hostFp: string;
let n = 0;
const MiB = 1024 * 1024;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glidessh-sftp-interop-'));
  local = join(tmp, 'local');
  mkdirSync(local);
  writeFileSync(join(local, 'zero'), '');
  writeFileSync(join(local, 'one'), 'x');
  writeFileSync(join(local, 'big'), randomBytes(100 * MiB));
  mkdirSync(join(local, 'tree', 'inner'), { recursive: true });
  writeFileSync(join(local, 'tree', 'a.txt'), 'a\n');
  writeFileSync(join(local, 'tree', 'inner', 'b.bin'), randomBytes(300_000));
  const key = join(tmp, 'host');
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).status, 0);
  hostKey = readFileSync(key);
  hostFp = /SHA256:\S+/.exec(spawnSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).stdout)![0];
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A server with sftp and legacy scp on a fresh root (which also holds a link pointing out). */
async function withFiles(options: Partial<FileServerOptions>, body: (srv: TestServer, root: string) => Promise<void>): Promise<void> {
  const root = join(tmp, `root${n++}`);
  mkdirSync(root);
  writeFileSync(join(tmp, 'outside.txt'), 'outside\n');
  symlinkSync(join(tmp, 'outside.txt'), join(root, 'out-link'));
  const files = { root, ...options };
  const srv = await startServer({ hostKeys: [hostKey], handler: scpHandler(files), subsystemHandlers: { sftp: sftpHandler(files) } });
  try {
    await body(srv, root);
    assert.deepEqual(srv.errors, []);
  } finally {
    await srv.close();
  }
}

const sshOpts = (port: number): string[] => [...SSH_ARGS, '-P', String(port)];

function sftp(port: number, script: string, timeoutMs = 60_000): Promise<ProcResult> {
  return run('sftp', [...sshOpts(port), '-b', '-', 'testuser@127.0.0.1'], { input: script, timeoutMs });
}

function scp(port: number, args: string[], timeoutMs = 60_000): Promise<ProcResult> {
  return run('scp', [...sshOpts(port), ...args], { timeoutMs });
}

const remote = (p: string): string => `testuser@127.0.0.1:${p}`;

describe('OpenSSH sftp and scp', () => {
  it('sftp -b: put, get, ls, mkdir, rename, chmod, symlink, ln, df, rm, rmdir; 0 B, 1 B and 100 MiB intact', { timeout: 90_000 }, async () => {
    await withFiles({}, async ({ port }, root) => {
      const back = join(tmp, `back${n++}`);
      mkdirSync(back);
      const t0 = Date.now();
      const r = await sftp(
        port,
        [
          'mkdir up',
          'cd up',
          `put ${local}/zero`,
          `put ${local}/one`,
          `put ${local}/big`,
          'ls -l',
          'rename one one.renamed',
          'chmod 600 one.renamed',
          'symlink one.renamed link',
          'ln big big.hard',
          'df /',
          `get zero ${back}/zero`,
          `get link ${back}/one`,
          `get big ${back}/big`,
          'rm big.hard',
          'mkdir gone',
          'rmdir gone',
          'bye',
        ].join('\n'),
      );
      assert.equal(r.code, 0, r.stderr.toString());
      const out = r.stdout.toString();
      assert.match(out, /^-rw-r--r-- +1 \S+ +\S+ +104857600 \w{3} [ \d]\d [\d:]{4,5} big$/m, out);
      assert.match(out, /Size +Used +Avail +\(root\) +%Capacity/);
      for (const f of ['zero', 'one', 'big']) assert.equal(shaFile(join(back, f)), shaFile(join(local, f)), f);
      assert.equal(shaFile(join(root, 'up', 'big')), shaFile(join(local, 'big')));
      assert.equal(statSync(join(root, 'up', 'one.renamed')).mode & 0o777, 0o600);
      assert.equal(readlinkSync(join(root, 'up', 'link')), 'one.renamed');
      assert.throws(() => lstatSync(join(root, 'up', 'big.hard')));
      assert.throws(() => lstatSync(join(root, 'up', 'gone')));
      assert.ok(Date.now() - t0 < 60_000);
    });
  });

  it("bye ends the session at once (the client EOF; where ssh2's own SFTP server hangs, #1443)", async () => {
    await withFiles({}, async ({ port }) => {
      const t0 = Date.now();
      const r = await sftp(port, 'pwd\nbye\n', 10_000);
      assert.equal(r.code, 0, r.stderr.toString());
      assert.match(r.stdout.toString(), /Remote working directory: \/\n/);
      assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
    });
  });

  it('sftp cannot reach outside the root: .., absolute paths and a link pointing out are not found; put ../x lands inside', async () => {
    await withFiles({}, async ({ port }, root) => {
      for (const src of ['../../etc/passwd', `${tmp}/outside.txt`, 'out-link', '/../outside.txt']) {
        const r = await sftp(port, `get ${src} ${join(tmp, 'leak')}\n`);
        assert.notEqual(r.code, 0, src);
        assert.match(r.stderr.toString(), /not found|No such file/, `${src}: ${r.stderr}`);
      }
      assert.throws(() => statSync(join(tmp, 'leak')));
      const put = await sftp(port, `put ${local}/one ../../escaped\n`);
      assert.equal(put.code, 0, put.stderr.toString());
      assert.equal(readFileSync(join(root, 'escaped'), 'utf8'), 'x', '.. stops at the root');
      assert.throws(() => statSync(join(tmp, 'escaped')));
    });
  });

  it('scp over SFTP and scp -O (legacy), both ways, single files and -r trees with -p', { timeout: 60_000 }, async () => {
    await withFiles({}, async ({ port }, root) => {
      for (const legacy of [false, true]) {
        const o = legacy ? ['-O'] : [];
        const dest = `d${legacy ? 'legacy' : 'sftp'}`;
        mkdirSync(join(root, dest));
        let r = await scp(port, [...o, join(local, 'zero'), join(local, 'one'), remote(`/${dest}/`)]);
        assert.equal(r.code, 0, r.stderr.toString());
        r = await scp(port, [...o, '-r', '-p', join(local, 'tree'), remote(dest)]);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(statSync(join(root, dest, 'one')).size, 1);
        assert.equal(shaFile(join(root, dest, 'tree', 'inner', 'b.bin')), shaFile(join(local, 'tree', 'inner', 'b.bin')));
        const secs = (p: string): number => Math.floor(statSync(p).mtimeMs / 1000);
        assert.equal(secs(join(root, dest, 'tree', 'a.txt')), secs(join(local, 'tree', 'a.txt')), '-p keeps the time');
        const back = join(tmp, `scpback${n++}`);
        mkdirSync(back);
        r = await scp(port, [...o, '-r', remote(`${dest}/tree`), remote(`${dest}/zero`), remote(`/${dest}/one`), back]);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(shaFile(join(back, 'tree', 'inner', 'b.bin')), shaFile(join(local, 'tree', 'inner', 'b.bin')));
        assert.deepEqual([statSync(join(back, 'zero')).size, readFileSync(join(back, 'one'), 'utf8')], [0, 'x']);
        const escape = await scp(port, [...o, remote('../../etc/passwd'), join(back, 'passwd')]);
        assert.notEqual(escape.code, 0);
        assert.throws(() => statSync(join(back, 'passwd')));
      }
    });
  });
});

describe('PuTTY psftp and pscp', () => {
  const putty = (tool: string, port: number, args: string[], timeoutMs = 60_000): Promise<ProcResult> =>
    run(tool, ['-batch', '-P', String(port), '-hostkey', hostFp, '-l', 'putty', ...args], { timeoutMs });

  it('psftp -b: put, get, ls, mkdir, mv, chmod, rm, rmdir; 0 B, 1 B and 100 MiB intact', { timeout: 90_000 }, async (t) => {
    if (!need(t, 'psftp')) return;
    await withFiles({}, async ({ port }, root) => {
      const back = join(tmp, `pback${n++}`);
      mkdirSync(back);
      const script = join(tmp, `psftp${n++}.txt`);
      writeFileSync(
        script,
        [
          'mkdir up',
          'cd up',
          `put ${local}/zero zero`,
          `put ${local}/one one`,
          `put ${local}/big big`,
          'ls',
          'mv one one.moved',
          'chmod 600 one.moved',
          `get zero ${back}/zero`,
          `get one.moved ${back}/one`,
          `get big ${back}/big`,
          'rm zero',
          'mkdir gone',
          'rmdir gone',
          'quit',
        ].join('\n') + '\n',
      );
      const r = await putty('psftp', port, ['-b', script, '127.0.0.1'], 90_000);
      assert.equal(r.code, 0, r.stderr.toString() + r.stdout.toString());
      assert.match(r.stdout.toString(), /-rw-r--r-- +1 \S+ +\S+ +104857600 .* big/);
      for (const f of ['zero', 'one', 'big']) assert.equal(shaFile(join(back, f)), shaFile(join(local, f)), f);
      assert.equal(shaFile(join(root, 'up', 'big')), shaFile(join(local, 'big')));
      assert.equal(statSync(join(root, 'up', 'one.moved')).mode & 0o777, 0o600);
      assert.throws(() => lstatSync(join(root, 'up', 'zero')));
    });
  });

  it('pscp -sftp and -scp, both ways, single files and -r; escapes refused', { timeout: 60_000 }, async (t) => {
    if (!need(t, 'pscp')) return;
    await withFiles({}, async ({ port }, root) => {
      for (const proto of ['-sftp', '-scp']) {
        const dest = `p${proto.slice(1)}`;
        mkdirSync(join(root, dest));
        let r = await putty('pscp', port, [proto, join(local, 'zero'), join(local, 'one'), `127.0.0.1:/${dest}/`]);
        assert.equal(r.code, 0, r.stderr.toString());
        r = await putty('pscp', port, [proto, '-r', join(local, 'tree'), `127.0.0.1:${dest}`]);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(shaFile(join(root, dest, 'tree', 'inner', 'b.bin')), shaFile(join(local, 'tree', 'inner', 'b.bin')));
        const back = join(tmp, `pscpback${n++}`);
        mkdirSync(back);
        r = await putty('pscp', port, [proto, '-r', `127.0.0.1:${dest}/tree`, back]);
        assert.equal(r.code, 0, r.stderr.toString());
        r = await putty('pscp', port, [proto, `127.0.0.1:/${dest}/one`, join(back, 'one')]);
        assert.equal(r.code, 0, r.stderr.toString());
        r = await putty('pscp', port, [proto, `127.0.0.1:/${dest}/zero`, join(back, 'zero')]);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(shaFile(join(back, 'tree', 'inner', 'b.bin')), shaFile(join(local, 'tree', 'inner', 'b.bin')));
        assert.deepEqual([statSync(join(back, 'zero')).size, readFileSync(join(back, 'one'), 'utf8')], [0, 'x']);
        for (const src of ['../../etc/passwd', '/out-link', `${tmp}/outside.txt`]) {
          const e = await putty('pscp', port, [proto, `127.0.0.1:${src}`, join(back, 'leak')]);
          assert.notEqual(e.code, 0, `${proto} ${src}`);
          assert.throws(() => statSync(join(back, 'leak')));
        }
      }
    });
  });
});

describe('examples/sftp', () => {
  it('serves ROOT to sftp and to scp -O, and prints each change', async (t) => {
    const root = join(tmp, 'example-root');
    mkdirSync(root);
    writeFileSync(join(root, 'hello.txt'), 'hi\n');
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'examples/sftp.ts'], {
      env: { ...process.env, ADDR: '127.0.0.1:0', ROOT: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => void child.kill('SIGKILL'));
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`did not start: ${out}`)), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on [^\s:]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    });
    const back = join(tmp, 'example-back');
    const r = await sftp(port, `get hello.txt ${back}\nmkdir made\n`);
    assert.equal(r.code, 0, r.stderr.toString());
    assert.equal(readFileSync(back, 'utf8'), 'hi\n');
    const s = await scp(port, ['-O', join(local, 'one'), remote('made/')]);
    assert.equal(s.code, 0, s.stderr.toString());
    assert.equal(readFileSync(join(root, 'made', 'one'), 'utf8'), 'x');
    assert.match(out, /"type":"mkdir","path":"\/made"/);
  });
});
