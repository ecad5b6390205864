/**
 * Confinement: no client path, symbolic link or race reaches a file outside the root, for the
 * local filesystem (pinned directory handles) and for a custom filesystem (path walk); and
 * an in-memory filesystem served through the same interface.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../helpers/harness.js';
import { memoryFs, trackingFs } from '../helpers/sftp-fs.js';
import { PF, RawSftp, ST, T } from '../helpers/sftp-raw.js';
import { sftpHandler, type SftpFileSystem } from '../../src/index.js';

const SECRET = 'outside secret\n';
let base: string;
let n = 0;
before(() => {
  base = mkdtempSync(join(tmpdir(), 'glidessh-jail-'));
});
after(() => rmSync(base, { recursive: true, force: true }));

/** base/N/{x, out/secret, root/{hello.txt, inside/secret, up → ../out, abs → /…/out, etc → /etc, bin → /usr/bin, dangle → /…/out/created}} */
function tree(): { root: string; out: string } {
  const top = join(base, String(n++));
  const out = join(top, 'out');
  const root = join(top, 'root');
  mkdirSync(out, { recursive: true });
  mkdirSync(join(root, 'inside'), { recursive: true });
  writeFileSync(join(out, 'secret'), SECRET);
  writeFileSync(join(top, 'x'), SECRET);
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  writeFileSync(join(root, 'inside', 'secret'), 'inside\n');
  symlinkSync('../out', join(root, 'up'));
  symlinkSync(out, join(root, 'abs'));
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('/usr/bin', join(root, 'bin'));
  symlinkSync(join(out, 'created'), join(root, 'dangle'));
  return { root, out };
}

const modes: Array<[string, () => SftpFileSystem | undefined]> = [
  ['local filesystem (pinned)', () => undefined],
  ['custom filesystem (path walk)', () => trackingFs().fs],
];

for (const [label, makeFs] of modes) {
  describe(`confinement, ${label}`, () => {
    it('.., absolute paths and links pointing out all stay inside the root (nothing outside is read or written)', async () => {
      const { root, out } = tree();
      const fs = makeFs();
      const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root, ...(fs ? { fs } : {}) }) } });
      try {
        const c = await RawSftp.open(srv.port);
        const escapes = ['../out/secret', '/../out/secret', `/../../../../../..${out}/secret`, `${out}/secret`, 'up/secret', 'abs/secret', 'bin/env', 'inside/../../out/secret', '/../x', '../x'];
        for (const p of escapes) {
          const o = await c.request(T.OPEN, Buffer.concat([len(p), Buffer.from(p), u32(PF.READ), u32(0)]));
          assert.equal(o.status, ST.NO_SUCH_FILE, `open ${p}`);
          assert.equal((await c.stat(p)).status, ST.NO_SUCH_FILE, `stat ${p}`);
        }
        assert.equal((await c.opendir('abs')).status, ST.NO_SUCH_FILE);
        // `etc` → /etc is, inside the root, a link to itself.
        const loop = await c.stat('etc/passwd');
        assert.deepEqual([loop.status, loop.message], [ST.FAILURE, 'Too many symbolic links encountered']);
        assert.equal((await c.realpath('up')).names![0]!.filename, '/out', 'a link is resolved as under a chroot');
        assert.equal((await c.realpath('../../..')).names![0]!.filename, '/');
        assert.equal((await c.readFile('/inside/../hello.txt')).toString(), 'hello\n');
        // Changes through escaping paths never touch the outside.
        const attempts = [
          await c.request(T.OPEN, Buffer.concat([len('/dangle'), Buffer.from('/dangle'), u32(PF.WRITE | PF.CREAT), u32(0)])),
          await c.request(T.OPEN, Buffer.concat([len('up/new'), Buffer.from('up/new'), u32(PF.WRITE | PF.CREAT), u32(0)])),
          await c.setstat('abs/secret', { permissions: 0o777 }),
          await c.remove('abs/secret'),
          await c.remove('../out/secret'),
          await c.mkdir('abs/newdir'),
          await c.rename('/hello.txt', '../out/stolen'),
          await c.rename('abs/secret', '/stolen'),
          await c.extended('hardlink@openssh.com', 'abs/secret', '/stolen'),
        ];
        for (const r of attempts) assert.equal(r.status, ST.NO_SUCH_FILE, JSON.stringify(r));
        assert.deepEqual(readdirSync(out), ['secret']);
        assert.equal(statSync(join(out, 'secret')).mode & 0o777, 0o644);
        assert.equal(readFileSync(join(out, 'secret'), 'utf8'), SECRET);
        // Removing a link removes the link, not its target.
        assert.equal((await c.remove('/abs')).status, ST.OK);
        assert.ok(existsSync(join(out, 'secret')));
        assert.equal((await c.end()).code, 0);
      } finally {
        await srv.close();
      }
    });

    it('refuses to create a link whose target leaves the root, and stores the others relative', async () => {
      const { root } = tree();
      const fs = makeFs();
      const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root, ...(fs ? { fs } : {}) }) } });
      try {
        const c = await RawSftp.open(srv.port);
        for (const target of ['..', '../out', '/../out/secret', 'inside/../../out']) {
          assert.equal((await c.symlink(target, `/l${n++}`)).status, ST.PERMISSION_DENIED, target);
        }
        assert.equal((await c.symlink('/inside/secret', '/inside/l')).status, ST.OK);
        assert.equal((await c.readlink('/inside/l')).names![0]!.filename, 'secret');
        assert.equal((await c.readFile('/inside/l')).toString(), 'inside\n');
        await c.end();
      } finally {
        await srv.close();
      }
    });

    it('a link moved so that it points above the root physically is still resolved inside', async () => {
      const { root } = tree();
      const fs = makeFs();
      const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root, ...(fs ? { fs } : {}) }) } });
      try {
        const c = await RawSftp.open(srv.port);
        await c.mkdir('/a');
        await c.mkdir('/a/b');
        assert.equal((await c.symlink('/x', '/a/b/l')).status, ST.OK); // stored ../../x
        assert.equal((await c.rename('/a/b', '/b2')).status, ST.OK); // now ../../x leaves the root on the host
        const r = await c.stat('/b2/l');
        assert.equal(r.status, ST.NO_SUCH_FILE, 'not the file next to the root');
        assert.equal((await c.realpath('/b2/l')).names![0]!.filename, '/x');
        await c.end();
      } finally {
        await srv.close();
      }
    });
  });
}

describe('confinement under races (local filesystem)', () => {
  it('a directory swapped with a link to the outside, in parallel, never lets a read out', async () => {
    const { root, out } = tree();
    const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root }) } });
    const dirPath = join(root, 'inside');
    // Another process swaps the real directory and a link to `out` as fast as it can (with a
    // path walk plus open, as a custom filesystem gets, this leaks the outside file).
    const swapper = spawn(
      process.execPath,
      ['-e', SWAPPER, dirPath, join(root, 'inside.real'), out],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(swapper.stdout!, 'data'); // started
      const c = await RawSftp.open(srv.port);
      const seen = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const r = await c.request(T.OPEN, Buffer.concat([len('/inside/secret'), Buffer.from('/inside/secret'), u32(PF.READ), u32(0)]));
        let what = `status ${r.status}`;
        if (r.handle) {
          const d = await c.read(r.handle, 0, 100);
          what = d.data ? d.data.toString() : `read ${d.status}`;
          await c.close(r.handle);
        }
        seen.set(what, (seen.get(what) ?? 0) + 1);
      }
      assert.ok(!seen.has(SECRET), `read outside: ${JSON.stringify([...seen])}`);
      assert.ok((seen.get('inside\n') ?? 0) > 0 && (seen.get('status 2') ?? 0) > 0, `both states were hit: ${JSON.stringify([...seen])}`);
      await c.end();
    } finally {
      swapper.kill('SIGKILL');
      await srv.close();
    }
  });

  it('a link swapped to the outside during a transfer: the open file keeps being read, new opens stay inside', async () => {
    const { root, out } = tree();
    const data = randomBytes(4 * 1024 * 1024);
    mkdirSync(join(root, 'v1'));
    writeFileSync(join(root, 'v1', 'secret'), data);
    symlinkSync('v1', join(root, 'cur'));
    const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root }) } });
    try {
      const c = await RawSftp.open(srv.port);
      const h = await c.open('/cur/secret', PF.READ);
      const parts: Buffer[] = [];
      for (let off = 0; off < data.length; off += 65536) {
        if (off === 1024 * 1024) {
          unlinkSync(join(root, 'cur'));
          symlinkSync(out, join(root, 'cur')); // now an absolute link to the outside
        }
        parts.push((await c.read(h, off, 65536)).data!);
      }
      await c.close(h);
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      assert.equal(sha(Buffer.concat(parts)), sha(data), 'the transfer finished with the original file');
      assert.equal((await c.stat('/cur/secret')).status, ST.NO_SUCH_FILE);
      assert.equal((await c.request(T.OPEN, Buffer.concat([len('/cur/secret'), Buffer.from('/cur/secret'), u32(PF.READ), u32(0)]))).status, ST.NO_SUCH_FILE);
      await c.end();
    } finally {
      await srv.close();
    }
  });
});

describe('an in-memory filesystem', () => {
  it('serves a virtual tree: list, read, write, rename, links inside, and no way above its root', async () => {
    const fs = memoryFs({ '/docs/readme.txt': 'hello from memory\n', '/top.txt': 'top' });
    const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root: '/docs', fs }) } });
    try {
      const c = await RawSftp.open(srv.port);
      assert.equal(c.extensions.has('statvfs@openssh.com'), false, 'no statfs, no statvfs');
      assert.deepEqual((await c.list('/')).map((e) => e.filename), ['.', '..', 'readme.txt']);
      assert.equal((await c.readFile('/readme.txt')).toString(), 'hello from memory\n');
      assert.equal((await c.stat('/../top.txt')).status, ST.NO_SUCH_FILE);
      const h = await c.open('/new.txt', PF.WRITE | PF.CREAT);
      await c.write(h, 0, Buffer.from('written'));
      await c.close(h);
      assert.equal((await c.rename('/new.txt', '/renamed.txt')).status, ST.OK);
      assert.equal((await c.symlink('renamed.txt', '/ln')).status, ST.OK);
      assert.equal((await c.readFile('/ln')).toString(), 'written');
      assert.match((await c.list('/')).find((e) => e.filename === 'ln')!.longname, /^lrwxrwxrwx +1 1000 +1000 /);
      assert.equal((await c.extended('statvfs@openssh.com', '/')).status, ST.OP_UNSUPPORTED);
      assert.equal((await c.end()).code, 0);
    } finally {
      await srv.close();
    }
  });
});

/** Node code for the swapping process: argv = directory, parking name, outside target. */
const SWAPPER = `
const fs = require('fs');
const [dir, park, out] = process.argv.slice(1);
process.stdout.write('go');
const end = Date.now() + 20000;
while (Date.now() < end) { fs.renameSync(dir, park); fs.symlinkSync(out, dir); fs.unlinkSync(dir); fs.renameSync(park, dir); }
`;

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function len(s: string): Buffer {
  return u32(Buffer.byteLength(s));
}
