/**
 * sftpHandler at the protocol level, with a raw SFTP client: every SFTP v3 request, the
 * OpenSSH extensions, long names, and the status code of every kind of error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/harness.js';
import { fields, PF, RawSftp, ST, T } from '../helpers/sftp-raw.js';
import { memoryFs } from '../helpers/sftp-fs.js';
import {
  HookError,
  InvalidOptionError,
  sftpHandler,
  SftpStatus,
  SftpStatusError,
  type SftpFileSystem,
  type SftpOperation,
  type SftpOptions,
} from '../../src/index.js';

const pick = (r: { status?: number; message?: string }): [number | undefined, string | undefined] => [r.status, r.message];

let dir: string;
let n = 0;
/** A fresh root directory with a few files. */
function freshRoot(): string {
  const root = join(dir, `root${n++}`);
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'hello.txt'), 'hello world\n');
  writeFileSync(join(root, 'sub', 'a.txt'), 'A');
  return root;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'glidessh-sftp-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withSftp(
  options: Partial<SftpOptions>,
  body: (c: RawSftp, root: string, srv: TestServer) => Promise<void>,
): Promise<void> {
  const root = freshRoot();
  const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root, ...options }) } });
  const c = await RawSftp.open(srv.port);
  try {
    await body(c, root, srv);
    const end = await c.end();
    assert.equal(end.code, 0, 'the client EOF ends the session with status 0');
  } finally {
    await srv.close();
  }
}

describe('sftpHandler: requests', () => {
  it('answers INIT with version 3 and the OpenSSH extensions, limits giving 255 KiB reads', async () => {
    await withSftp({}, async (c) => {
      assert.deepEqual(Object.fromEntries(c.extensions), {
        'posix-rename@openssh.com': '1',
        'statvfs@openssh.com': '2',
        'hardlink@openssh.com': '1',
        'fsync@openssh.com': '1',
        'limits@openssh.com': '1',
      });
      const r = await c.extended('limits@openssh.com');
      assert.equal(r.type, T.EXTENDED_REPLY);
      const v = [0, 1, 2, 3].map((i) => Number(r.data!.readBigUInt64BE(i * 8)));
      assert.deepEqual(v, [262144, 261120, 261120, 512]);
    });
  });

  it('opens, writes, reads, fstats and closes a file; a read at the end gets EOF', async () => {
    await withSftp({}, async (c, root) => {
      const h = await c.open('/new.bin', PF.WRITE | PF.CREAT | PF.TRUNC);
      const data = Buffer.from('0123456789'.repeat(1000));
      assert.equal((await c.write(h, 0, data)).status, ST.OK);
      assert.equal((await c.write(h, data.length, Buffer.from('!'))).status, ST.OK);
      assert.equal((await c.fstat(h)).attrs!.size, data.length + 1);
      assert.equal((await c.close(h)).status, ST.OK);
      assert.equal(readFileSync(join(root, 'new.bin')).length, 10001);
      const r = await c.open('new.bin', PF.READ);
      const got = await c.read(r, 9995, 100);
      assert.equal(got.type, T.DATA);
      assert.equal(got.data!.toString(), '56789!');
      const eof = await c.read(r, 10001, 100);
      assert.deepEqual([eof.type, eof.status], [T.STATUS, ST.EOF]);
      await c.close(r);
      assert.equal((await c.readFile('/new.bin')).length, 10001);
    });
  });

  it('open flags: EXCL on an existing file fails, APPEND appends, a read-only handle refuses writes', async () => {
    await withSftp({}, async (c, root) => {
      const ex = await c.request(T.OPEN, fields('hello.txt', PF.WRITE | PF.CREAT | PF.EXCL, { attrs: {} }));
      assert.deepEqual([ex.status, ex.message], [ST.FAILURE, 'File already exists']);
      const a = await c.open('hello.txt', PF.WRITE | PF.APPEND);
      await c.write(a, 0, Buffer.from('more\n'));
      await c.close(a);
      assert.equal(readFileSync(join(root, 'hello.txt'), 'utf8'), 'hello world\nmore\n');
      const ro = await c.open('hello.txt', PF.READ);
      assert.equal((await c.write(ro, 0, Buffer.from('x'))).status, ST.PERMISSION_DENIED);
      await c.close(ro);
      const dirOpen = await c.request(T.OPEN, fields('sub', PF.READ, { attrs: {} }));
      assert.deepEqual([dirOpen.status, dirOpen.message], [ST.FAILURE, 'Is a directory']);
    });
  });

  it('stat follows a symlink, lstat does not; setstat and fsetstat change size, mode and times', async () => {
    await withSftp({}, async (c, root) => {
      symlinkSync('hello.txt', join(root, 'link'));
      const st = await c.stat('/link');
      assert.equal(st.attrs!.size, 12);
      assert.equal(st.attrs!.permissions! & 0o170000, 0o100000);
      const lst = await c.lstat('/link');
      assert.equal(lst.attrs!.permissions! & 0o170000, 0o120000);
      assert.equal((await c.setstat('hello.txt', { size: 5, permissions: 0o600, atime: 1_000_000, mtime: 2_000_000 })).status, ST.OK);
      const s = statSync(join(root, 'hello.txt'));
      assert.deepEqual([s.size, s.mode & 0o777, s.mtimeMs / 1000, s.atimeMs / 1000], [5, 0o600, 2_000_000, 1_000_000]);
      const h = await c.open('hello.txt', PF.READ | PF.WRITE);
      assert.equal((await c.fsetstat(h, { permissions: 0o640, size: 2 })).status, ST.OK);
      await c.close(h);
      assert.deepEqual([statSync(join(root, 'hello.txt')).mode & 0o777, statSync(join(root, 'hello.txt')).size], [0o640, 2]);
    });
  });

  it('lists directories in batches of at most 100, with . and .. and ls -l long names', async () => {
    await withSftp({}, async (c, root) => {
      mkdirSync(join(root, 'many'));
      for (let i = 0; i < 250; i++) writeFileSync(join(root, 'many', `f${i}`), 'x'.repeat(i));
      const o = await c.opendir('/many');
      const sizes: number[] = [];
      const names: string[] = [];
      for (;;) {
        const r = await c.readdir(o.handle!);
        if (r.type === T.STATUS) {
          assert.equal(r.status, ST.EOF);
          break;
        }
        sizes.push(r.names!.length);
        names.push(...r.names!.map((e) => e.filename));
      }
      await c.close(o.handle!);
      assert.ok(sizes.every((s) => s <= 100), `batches ${sizes}`);
      assert.equal(names.length, 252);
      assert.deepEqual(names.slice(0, 2), ['.', '..']);
      const list = await c.list('/');
      const hello = list.find((e) => e.filename === 'hello.txt')!;
      assert.match(hello.longname, /^-rw-r--r-- +1 \S+ +\S+ +12 [A-Z][a-z]{2} [ \d]\d (\d\d:\d\d| \d{4}) hello\.txt$/);
      assert.match(list.find((e) => e.filename === 'sub')!.longname, /^drwxr-xr-x /);
      assert.equal(hello.attrs.size, 12);
    });
  });

  it('remove, mkdir (with mode), rmdir, realpath, readlink, symlink', async () => {
    await withSftp({}, async (c, root) => {
      assert.equal((await c.mkdir('/d', { permissions: 0o700 })).status, ST.OK);
      assert.equal(statSync(join(root, 'd')).mode & 0o777, 0o700);
      assert.equal((await c.symlink('/hello.txt', '/d/ln')).status, ST.OK);
      // Stored relative to the link's directory, so that it also stays inside for the host.
      assert.equal(readlinkSync(join(root, 'd', 'ln')), '../hello.txt');
      assert.equal((await c.readlink('/d/ln')).names![0]!.filename, '../hello.txt');
      assert.equal((await c.realpath('/d/../d/./ln')).names![0]!.filename, '/hello.txt');
      assert.equal((await c.realpath('.')).names![0]!.filename, '/');
      assert.equal((await c.realpath('sub/nothing-yet')).names![0]!.filename, '/sub/nothing-yet');
      assert.equal((await c.remove('/d/ln')).status, ST.OK);
      assert.equal((await c.rmdir('/d')).status, ST.OK);
      assert.equal((await c.remove('hello.txt')).status, ST.OK);
      assert.throws(() => lstatSync(join(root, 'hello.txt')));
    });
  });

  it('RENAME refuses an existing target; posix-rename replaces it; hardlink, fsync and statvfs work', async () => {
    await withSftp({}, async (c, root) => {
      const r = await c.rename('/hello.txt', '/sub/a.txt');
      assert.deepEqual([r.status, r.message], [ST.FAILURE, 'File already exists']);
      assert.equal((await c.rename('/hello.txt', '/moved.txt')).status, ST.OK);
      assert.equal((await c.rename('/sub', '/sub2')).status, ST.OK);
      assert.equal((await c.extended('posix-rename@openssh.com', '/moved.txt', '/sub2/a.txt')).status, ST.OK);
      assert.equal(readFileSync(join(root, 'sub2', 'a.txt'), 'utf8'), 'hello world\n');
      assert.equal((await c.extended('hardlink@openssh.com', '/sub2/a.txt', '/hard.txt')).status, ST.OK);
      assert.equal(statSync(join(root, 'hard.txt')).nlink, 2);
      const h = await c.open('/hard.txt', PF.WRITE);
      assert.equal((await c.extended('fsync@openssh.com', h)).status, ST.OK);
      await c.close(h);
      const v = await c.extended('statvfs@openssh.com', '/');
      assert.equal(v.type, T.EXTENDED_REPLY);
      assert.equal(v.data!.length, 88);
      assert.ok(v.data!.readBigUInt64BE(0) > 0n, 'f_bsize');
    });
  });
});

describe('sftpHandler: status codes', () => {
  it('NO_SUCH_FILE, FAILURE with the errno text, OP_UNSUPPORTED, BAD_MESSAGE and bad handles', async () => {
    await withSftp({}, async (c) => {
      for (const r of [await c.stat('/nope'), await c.opendir('/nope'), await c.remove('/nope/x'), await c.stat('/hello.txt/x')]) {
        assert.equal(r.status, ST.NO_SUCH_FILE, r.message);
      }
      const notEmpty = await c.rmdir('/sub');
      assert.deepEqual([notEmpty.status, notEmpty.message], [ST.FAILURE, 'Directory not empty']);
      const exists = await c.mkdir('/sub');
      assert.deepEqual([exists.status, exists.message], [ST.FAILURE, 'File already exists']);
      assert.equal((await c.request(99)).status, ST.OP_UNSUPPORTED);
      assert.equal((await c.extended('nope@example.com')).status, ST.OP_UNSUPPORTED);
      assert.equal((await c.request(T.OPEN, fields('x'))).status, ST.BAD_MESSAGE, 'a truncated OPEN');
      assert.equal((await c.read(Buffer.from('nope'), 0, 10)).status, ST.FAILURE);
      assert.equal((await c.close(Buffer.from([0, 0, 0, 99]))).status, ST.FAILURE);
      assert.equal((await c.remove('/')).status, ST.PERMISSION_DENIED, 'the root cannot be removed');
      // The messages never contain server paths.
      assert.ok(c.received.every((r) => !String(r.message).includes('/proc') && !String(r.message).includes(dir)));
    });
  });

  it('readOnly refuses every change with PERMISSION_DENIED and still serves reads', async () => {
    await withSftp({ readOnly: true }, async (c) => {
      const denied = [
        await c.request(T.OPEN, fields('/x', PF.WRITE | PF.CREAT, { attrs: {} })),
        await c.request(T.OPEN, fields('/hello.txt', PF.READ | PF.TRUNC, { attrs: {} })),
        await c.setstat('/hello.txt', { permissions: 0o777 }),
        await c.remove('/hello.txt'),
        await c.mkdir('/d'),
        await c.rmdir('/sub'),
        await c.rename('/hello.txt', '/y'),
        await c.symlink('/hello.txt', '/l'),
        await c.extended('posix-rename@openssh.com', '/hello.txt', '/y'),
        await c.extended('hardlink@openssh.com', '/hello.txt', '/y'),
      ];
      for (const r of denied) assert.equal(r.status, ST.PERMISSION_DENIED);
      assert.equal((await c.readFile('/hello.txt')).toString(), 'hello world\n');
      const v = await c.extended('statvfs@openssh.com', '/');
      assert.equal(Number(v.data!.readBigUInt64BE(72)) & 1, 1, 'ST_RDONLY');
    });
  });
});

describe('sftpHandler: options', () => {
  it('umask gives new files and directories exactly mode & ~umask', async () => {
    await withSftp({ umask: 0o027 }, async (c, root) => {
      await c.close(await c.open('/f', PF.WRITE | PF.CREAT, { permissions: 0o666 }));
      await c.close(await c.open('/g', PF.WRITE | PF.CREAT | PF.EXCL));
      await c.mkdir('/d', { permissions: 0o777 });
      assert.equal(statSync(join(root, 'f')).mode & 0o777, 0o640);
      assert.equal(statSync(join(root, 'g')).mode & 0o777, 0o640);
      assert.equal(statSync(join(root, 'd')).mode & 0o777, 0o750);
      // An existing file keeps its mode.
      await c.close(await c.open('/hello.txt', PF.WRITE | PF.CREAT, { permissions: 0o600 }));
      assert.equal(statSync(join(root, 'hello.txt')).mode & 0o777, 0o644);
    });
  });

  it('the operation callback sees canonical paths, can deny, and a throw denies and is reported', async () => {
    const seen: SftpOperation[] = [];
    await withSftp(
      {
        operationCallback: (_s, op) => {
          seen.push(op);
          if (op.path === '/boom') throw new Error('boom');
          return !op.path.startsWith('/sub');
        },
      },
      async (c, root, srv) => {
        symlinkSync('sub', join(root, 'alias'));
        assert.equal((await c.stat('/alias/a.txt')).status, ST.PERMISSION_DENIED, 'a link does not bypass the policy');
        assert.equal((await c.stat('/x/../hello.txt')).status, ST.NO_SUCH_FILE);
        assert.equal((await c.stat('/hello.txt')).type, T.ATTRS);
        assert.equal((await c.stat('/boom')).status, ST.PERMISSION_DENIED);
        await c.close(await c.open('/w', PF.WRITE | PF.CREAT));
        assert.deepEqual(seen.find((o) => o.type === 'open'), { type: 'open', path: '/w', read: false, write: true, create: true, truncate: false });
        assert.deepEqual(seen.find((o) => o.type === 'stat' && o.path.startsWith('/sub')), { type: 'stat', path: '/sub/a.txt' });
        assert.equal(srv.errors.length, 1);
        assert.ok(srv.errors[0] instanceof HookError);
        assert.equal((srv.errors[0] as HookError).hook, 'operationCallback');
      },
    );
  });

  it('a root per user from the session; a root function that throws ends the session with 1 and is reported', async () => {
    const roots = { ada: freshRoot(), bob: freshRoot() };
    writeFileSync(join(roots.ada, 'who'), 'ada');
    writeFileSync(join(roots.bob, 'who'), 'bob');
    const srv = await startServer({
      subsystemHandlers: {
        sftp: sftpHandler({
          root: (s) => {
            const r = roots[s.user as keyof typeof roots];
            if (!r) throw new Error(`no root for ${s.user}`);
            return r;
          },
        }),
      },
    });
    try {
      for (const user of ['ada', 'bob'] as const) {
        const c = await RawSftp.open(srv.port, { user });
        assert.equal((await c.readFile('/who')).toString(), user);
        await c.end();
      }
      const eve = await RawSftp.open(srv.port, { user: 'eve', init: false });
      assert.equal((await eve.done).code, 1);
      eve.client.end();
      assert.ok(srv.errors.some((e) => e instanceof HookError && e.hook === 'root'));
    } finally {
      await srv.close();
    }
  });

  it('a custom filesystem that throws a plain error answers FAILURE and reports a HookError "fs"; a status error is passed on', async () => {
    const fs = memoryFs({ '/ok.txt': 'ok' });
    const broken: SftpFileSystem = {
      ...fs,
      lstat: async (p) => {
        if (p.endsWith('/bug')) throw new TypeError('a bug');
        if (p.endsWith('/quota')) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'quota exceeded');
        return fs.lstat(p);
      },
    };
    const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root: '/', fs: broken }) } });
    try {
      const c = await RawSftp.open(srv.port);
      assert.deepEqual(pick(await c.lstat('/bug')), [ST.FAILURE, 'Failure']);
      assert.deepEqual(pick(await c.lstat('/quota')), [ST.PERMISSION_DENIED, 'quota exceeded']);
      assert.equal((await c.readFile('/ok.txt')).toString(), 'ok');
      await c.end();
      assert.equal(srv.errors.length, 1);
      assert.ok(srv.errors[0] instanceof HookError && srv.errors[0].hook === 'fs');
    } finally {
      await srv.close();
    }
  });

  it('rejects bad options with InvalidOptionError', () => {
    const bad: unknown[] = [undefined, {}, { root: '' }, { root: 3 }, { root: '/x', umask: 0o1000 }, { root: '/x', nope: 1 }, { root: '/x', fs: {} }, { root: '/x', maxReadLength: 10 }];
    for (const o of bad) assert.throws(() => sftpHandler(o as SftpOptions), InvalidOptionError, JSON.stringify(o));
  });

  it('maxReadLength caps reads and is what limits@openssh.com advertises', async () => {
    await withSftp({ maxReadLength: 4096 }, async (c, root) => {
      writeFileSync(join(root, 'big'), Buffer.alloc(100_000, 1));
      const lim = await c.extended('limits@openssh.com');
      assert.equal(Number(lim.data!.readBigUInt64BE(8)), 4096);
      const h = await c.open('/big', PF.READ);
      assert.equal((await c.read(h, 0, 65536)).data!.length, 4096);
      await c.close(h);
    });
  });
});
