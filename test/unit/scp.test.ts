/**
 * scpHandler at the protocol level (the rcp protocol driven by hand over an ssh2 exec
 * channel): uploads and downloads, -p times, -r trees, errors, confinement, and the fallback
 * for other commands.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { collect, connect, exec, startServer, type ExecResult } from '../helpers/harness.js';
import { ByteReader } from '../../src/sftp/byte-reader.js';
import { parseScpCommand } from '../../src/scp.js';
import { InvalidOptionError, scpHandler, scpMiddleware, Server, type ScpOptions } from '../../src/index.js';

let dir: string;
let n = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'glidessh-scp-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function freshRoot(): string {
  const root = join(dir, `r${n++}`);
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'sub', 'one'), '1');
  return root;
}

/** An exec channel with a reader over its stdout. */
async function scpExec(client: ssh2.Client, command: string): Promise<{ ch: ssh2.ClientChannel; r: ByteReader; done: Promise<ExecResult> }> {
  const ch = await new Promise<ssh2.ClientChannel>((res, rej) => client.exec(command, (e, c) => (e ? rej(e) : res(c))));
  const done = collect(ch);
  return { ch, r: new ByteReader(ch), done };
}

async function withScp(options: Partial<ScpOptions>, body: (client: ssh2.Client, root: string) => Promise<void>): Promise<void> {
  const root = freshRoot();
  const srv = await startServer({ handler: scpHandler({ root, ...options }) });
  const client = await connect(srv.port);
  try {
    await body(client, root);
    assert.deepEqual(srv.errors, []);
  } finally {
    client.end();
    await srv.close();
  }
}

describe('parseScpCommand', () => {
  it('reads -t/-f, -r, -p, -d, -v, clustered flags and --; anything else is not scp', () => {
    assert.deepEqual(parseScpCommand(['scp', '-v', '-r', '-p', '-d', '-t', '--', 'x y']), {
      mode: 'sink', recursive: true, preserve: true, targetIsDir: true, paths: ['x y'],
    });
    assert.deepEqual(parseScpCommand(['scp', '-rf', 'a', 'b']), { mode: 'source', recursive: true, preserve: false, targetIsDir: false, paths: ['a', 'b'] });
    assert.deepEqual(parseScpCommand(['scp', '-t', ''])?.paths, ['.']);
    for (const argv of [['ls'], ['scp'], ['scp', '-t'], ['scp', '-t', 'a', 'b'], ['scp', '-x', '-t', 'a'], ['scp', 'a', 'b'], ['/usr/bin/scp', '-t', 'a']]) {
      assert.equal(parseScpCommand(argv), undefined, argv.join(' '));
    }
  });
});

describe('scpHandler: scp -t (upload)', () => {
  it('receives files of 0, 1 and 70000 bytes into a directory, with -p times and modes', async () => {
    await withScp({}, async (client, root) => {
      const { ch, r, done } = await scpExec(client, 'scp -p -t /sub');
      assert.equal(await r.byte(), 0);
      for (const [name, size] of [['zero', 0], ['one-byte', 1], ['big', 70000]] as const) {
        ch.write('T1000000000 0 1100000000 0\n');
        assert.equal(await r.byte(), 0);
        ch.write(`C0640 ${size} ${name}\n`);
        assert.equal(await r.byte(), 0);
        ch.write(Buffer.alloc(size, 7));
        ch.write('\0');
        assert.equal(await r.byte(), 0);
      }
      ch.end();
      assert.equal((await done).code, 0);
      assert.equal(statSync(join(root, 'sub', 'big')).size, 70000);
      assert.equal(statSync(join(root, 'sub', 'zero')).size, 0);
      const st = statSync(join(root, 'sub', 'one-byte'));
      assert.deepEqual([st.size, st.mode & 0o777, st.mtimeMs / 1000, st.atimeMs / 1000], [1, 0o640, 1000000000, 1100000000]);
    });
  });

  it('receives a -r tree (D … E) and names a single file after a target that is not a directory', async () => {
    await withScp({}, async (client, root) => {
      const { ch, r, done } = await scpExec(client, 'scp -r -t /');
      assert.equal(await r.byte(), 0);
      for (const line of ['D0755 0 tree\n', 'D0700 0 inner\n', 'C0644 3 f\n']) {
        ch.write(line);
        assert.equal(await r.byte(), 0);
      }
      ch.write('abc\0');
      assert.equal(await r.byte(), 0);
      for (const line of ['E\n', 'E\n']) {
        ch.write(line);
        assert.equal(await r.byte(), 0);
      }
      ch.end();
      assert.equal((await done).code, 0);
      assert.equal(readFileSync(join(root, 'tree', 'inner', 'f'), 'utf8'), 'abc');
      const single = await scpExec(client, 'scp -t /renamed.txt');
      assert.equal(await single.r.byte(), 0);
      single.ch.write('C0644 2 whatever\n');
      assert.equal(await single.r.byte(), 0);
      single.ch.end('hi\0');
      assert.equal((await single.done).code, 0);
      assert.equal(readFileSync(join(root, 'renamed.txt'), 'utf8'), 'hi');
    });
  });

  it('refuses bad names, directories without -r, -d to a file and a read-only server, with an error line and status 1', async () => {
    await withScp({}, async (client, root) => {
      for (const [cmd, line, expect] of [
        ['scp -t /', 'C0644 1 ../evil\n', /\x02scp: protocol error: unexpected filename: \.\.\/evil\n$/],
        ['scp -t /', 'D0755 0 d\n', /\x02scp: received directory without -r\n$/],
      ] as const) {
        const { ch, r, done } = await scpExec(client, cmd);
        assert.equal(await r.byte(), 0);
        ch.write(line);
        const rest: Buffer[] = [];
        for (let c = await r.chunk(1000); c; c = await r.chunk(1000)) rest.push(c);
        assert.match(Buffer.concat(rest).toString('latin1'), expect);
        assert.equal((await done).code, 1);
      }
      const d = await exec(client, 'scp -d -t /hello.txt');
      assert.equal(d.code, 1);
      assert.match(d.stdout.toString(), /^\x02scp: \/hello\.txt: Not a directory\n$/);
      assert.deepEqual(readdirSync(root).sort(), ['empty', 'hello.txt', 'sub']);
    });
    await withScp({ readOnly: true }, async (client) => {
      const r = await exec(client, 'scp -t /');
      assert.equal(r.code, 1);
      assert.equal(r.stdout.toString(), '\x02scp: read-only server\n');
    });
  });

  it('keeps uploads inside the root: ../ and absolute targets land under it', async () => {
    await withScp({}, async (client, root) => {
      const { ch, r, done } = await scpExec(client, 'scp -t ../../../sub');
      assert.equal(await r.byte(), 0);
      ch.write('C0644 1 up\n');
      assert.equal(await r.byte(), 0);
      ch.end('u\0');
      assert.equal((await done).code, 0);
      assert.equal(readFileSync(join(root, 'sub', 'up'), 'utf8'), 'u');
    });
  });
});

describe('scpHandler: scp -f (download)', () => {
  it('sends single files (-p gives T lines), a -r tree, and matches * in the last component', async () => {
    await withScp({}, async (client) => {
      const one = await exec(client, 'scp -p -f /hello.txt /empty', { stdin: '\0\0\0\0\0\0\0\0' });
      assert.equal(one.code, 0, one.stderr.toString());
      assert.match(one.stdout.toString(), /^T\d+ 0 \d+ 0\nC0644 6 hello\.txt\nhello\n\0T\d+ 0 \d+ 0\nC0644 0 empty\n\0$/);
      const tree = await exec(client, 'scp -r -f sub', { stdin: '\0'.repeat(10) });
      assert.equal(tree.code, 0);
      assert.equal(tree.stdout.toString(), 'D0755 0 sub\nC0644 1 one\n1\0E\n');
      const glob = await exec(client, 'scp -f /*.txt', { stdin: '\0'.repeat(10) });
      assert.equal(glob.stdout.toString(), 'C0644 6 hello.txt\nhello\n\0');
    });
  });

  it('reports missing files, directories without -r and paths outside the root as errors and exits 1', async () => {
    await withScp({}, async (client) => {
      const r = await exec(client, 'scp -f /nope sub ../../etc/passwd /etc/passwd hello.txt', { stdin: '\0'.repeat(10) });
      assert.equal(r.code, 1);
      assert.equal(
        r.stdout.toString(),
        '\x01scp: /nope: No such file or directory\n\x01scp: sub: not a regular file\n\x01scp: ../../etc/passwd: No such file or directory\n' +
          '\x01scp: /etc/passwd: No such file or directory\nC0644 6 hello.txt\nhello\n\0',
      );
    });
  });
});

describe('scpHandler: other commands', () => {
  it('passes them to the fallback or the next handler, or refuses them with status 1', async () => {
    const root = freshRoot();
    assert.throws(() => scpHandler({ root: '' }), InvalidOptionError);
    assert.throws(() => scpHandler({ root, maxReadLength: 1 } as ScpOptions), InvalidOptionError);
    const fallback = await startServer({ handler: scpHandler({ root }, async (s) => void s.write(`other: ${s.rawCommand}\n`)) });
    const none = await startServer({ handler: scpHandler({ root }) });
    const server = new Server();
    server.use(scpMiddleware({ root }));
    server.handle(async (s) => void s.write('next\n'));
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const c1 = await connect(fallback.port);
      assert.equal((await exec(c1, 'ls -l')).stdout.toString(), 'other: ls -l\n');
      c1.end();
      const c2 = await connect(none.port);
      const refused = await exec(c2, 'ls');
      assert.deepEqual([refused.code, refused.stderr.toString()], [1, 'This service only serves scp and sftp.\n']);
      c2.end();
      const c3 = await connect(port);
      assert.equal((await exec(c3, 'whoami')).stdout.toString(), 'next\n');
      assert.match((await exec(c3, 'scp -f /hello.txt', { stdin: '\0\0' })).stdout.toString(), /^C0644 6 hello\.txt\n/);
      c3.end();
    } finally {
      await Promise.all([fallback.close(), none.close(), server.close()]);
    }
  });
});
