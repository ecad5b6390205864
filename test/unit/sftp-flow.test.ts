/**
 * sftpHandler under pipelining: replies in request order, ordering of overlapping requests,
 * bounded requests and bytes in progress, the client's EOF and an abrupt close (every handle
 * closed), bad framing; and ssh2's own SFTP client against it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { connect, startServer, waitFor } from '../helpers/harness.js';
import { trackingFs } from '../helpers/sftp-fs.js';
import { fields, PF, RawSftp, ST, T, type Reply } from '../helpers/sftp-raw.js';
import { sftpHandler, type SftpOptions } from '../../src/index.js';

let dir: string;
let n = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'glidessh-sftp-flow-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function freshRoot(): string {
  const root = join(dir, `r${n++}`);
  mkdirSync(root);
  return root;
}

async function serve(options: Partial<SftpOptions>, root = freshRoot()) {
  const srv = await startServer({ subsystemHandlers: { sftp: sftpHandler({ root, ...options }) } });
  return { srv, root };
}

const MiB = 1024 * 1024;
const CHUNK = 261120;

describe('sftpHandler: pipelining', () => {
  it('answers 66 pipelined reads in request order with the right bytes, a short one and EOFs at the end', async () => {
    const { srv, root } = await serve({});
    try {
      const data = randomBytes(64 * CHUNK - 1000);
      writeFileSync(join(root, 'f'), data);
      const c = await RawSftp.open(srv.port);
      const h = await c.open('/f', PF.READ);
      const first = c.received.length;
      const replies = await Promise.all(Array.from({ length: 66 }, (_, i) => c.read(h, i * CHUNK, CHUNK)));
      const ids = c.received.slice(first).map((r) => r.id);
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'replies arrive in request order');
      assert.deepEqual(Buffer.concat(replies.slice(0, 64).map((r) => r.data!)), data);
      assert.equal(replies[63]!.data!.length, CHUNK - 1000);
      assert.deepEqual(replies.slice(64).map((r) => r.status), [ST.EOF, ST.EOF]);
      await c.close(h);
      assert.equal((await c.end()).code, 0);
    } finally {
      await srv.close();
    }
  });

  it('keeps overlapping requests in order: a read after a write sees it; a pipelined close waits for the writes', async () => {
    const { srv, root } = await serve({});
    try {
      const c = await RawSftp.open(srv.port);
      const h = await c.open('/f', PF.READ | PF.WRITE | PF.CREAT);
      const parts = Array.from({ length: 40 }, () => randomBytes(32768));
      const writes = parts.map((p, i) => c.write(h, i * 32768, p));
      const readBack = c.read(h, 5 * 32768, 32768);
      const close = c.close(h);
      const results: Reply[] = await Promise.all([...writes, close]);
      assert.ok(results.every((r) => r.status === ST.OK), JSON.stringify(results.filter((r) => r.status !== ST.OK)));
      assert.deepEqual((await readBack).data, parts[5]);
      assert.deepEqual(readFileSync(join(root, 'f')), Buffer.concat(parts));
      await c.end();
    } finally {
      await srv.close();
    }
  });

  it('bounds what is in progress: at most 128 requests and 4 MiB (plus one request) of data, for 300 pipelined writes and reads', async () => {
    const { fs, t } = trackingFs();
    t.slow = 5;
    const { srv, root } = await serve({ fs });
    try {
      const c = await RawSftp.open(srv.port);
      const h = await c.open('/big', PF.READ | PF.WRITE | PF.CREAT);
      const block = randomBytes(CHUNK);
      const writes = await Promise.all(Array.from({ length: 300 }, (_, i) => c.write(h, i * CHUNK, block)));
      assert.ok(writes.every((r) => r.status === ST.OK));
      const reads = await Promise.all(Array.from({ length: 300 }, (_, i) => c.read(h, i * CHUNK, CHUNK)));
      assert.ok(reads.every((r) => r.data?.equals(block)));
      await c.close(h);
      assert.ok(t.maxBytes <= 4 * MiB + CHUNK, `at most 4 MiB in progress, saw ${t.maxBytes}`);
      assert.ok(t.maxWrites <= 128 && t.maxReads <= 128, `${t.maxWrites} ${t.maxReads}`);
      assert.ok(t.maxReads > 4, `reads did run in parallel (${t.maxReads})`);
      assert.equal(readFileSync(join(root, 'big')).length, 300 * CHUNK);
      await c.end();
    } finally {
      await srv.close();
    }
  });
});

describe('sftpHandler: lifecycle', () => {
  it('the client EOF ends the session with status 0 after in-flight replies, and closes every handle', async () => {
    const { fs, t } = trackingFs();
    const { srv, root } = await serve({ fs });
    try {
      writeFileSync(join(root, 'f'), randomBytes(MiB));
      const c = await RawSftp.open(srv.port);
      for (let i = 0; i < 3; i++) await c.open('/f', PF.READ);
      t.slow = 50;
      const h = await c.open('/f', PF.READ);
      const pending = c.read(h, 0, 1000);
      const start = Date.now();
      const end = await c.end();
      assert.equal(end.code, 0);
      assert.equal((await pending).data!.length, 1000, 'the reply sent before EOF was answered');
      assert.ok(Date.now() - start < 3000);
      await waitFor(() => t.open === 0, 2000, 'handles closed');
      assert.equal(t.maxOpen, 4);
    } finally {
      await srv.close();
    }
  });

  it('an abrupt channel close (no EOF) closes every handle', async () => {
    const { fs, t } = trackingFs();
    const { srv, root } = await serve({ fs });
    try {
      writeFileSync(join(root, 'f'), 'x');
      const c = await RawSftp.open(srv.port);
      await c.open('/f', PF.READ);
      await c.open('/f', PF.READ);
      assert.equal(t.open, 2);
      await c.abort();
      await waitFor(() => t.open === 0, 2000, 'handles closed');
      assert.deepEqual(srv.errors, []);
    } finally {
      await srv.close();
    }
  });

  it('a packet longer than 256 KiB or a first packet other than INIT ends the session with status 2', async () => {
    const { srv } = await serve({});
    try {
      const c = await RawSftp.open(srv.port);
      const huge = Buffer.alloc(4);
      huge.writeUInt32BE(300 * 1024);
      c.channel.write(huge);
      assert.equal((await c.done).code, 2);
      c.client.end();
      const d = await RawSftp.open(srv.port, { init: false });
      d.sendPacket(T.STAT, fields(1, '/'));
      assert.equal((await d.done).code, 2);
      d.client.end();
    } finally {
      await srv.close();
    }
  });
});

describe('sftpHandler with ssh2 client sftp()', () => {
  it('fastPut, fastGet, readdir, rename and unlink round-trip a 3 MiB file', async () => {
    const { srv, root } = await serve({});
    const client = await connect(srv.port);
    try {
      const local = join(dir, 'src.bin');
      const back = join(dir, 'back.bin');
      const data = randomBytes(3 * MiB + 7);
      writeFileSync(local, data);
      const sftp = await new Promise<ssh2.SFTPWrapper>((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
      await new Promise<void>((res, rej) => sftp.fastPut(local, '/up.bin', (e) => (e ? rej(e) : res())));
      assert.deepEqual(readFileSync(join(root, 'up.bin')), data);
      await new Promise<void>((res, rej) => sftp.fastGet('/up.bin', back, (e) => (e ? rej(e) : res())));
      assert.deepEqual(readFileSync(back), data);
      const list = await new Promise<ssh2.FileEntryWithStats[]>((res, rej) => sftp.readdir('/', (e, l) => (e ? rej(e) : res(l))));
      assert.deepEqual(list.map((e) => e.filename).filter((f) => !f.startsWith('.')), ['up.bin']);
      await new Promise<void>((res, rej) => sftp.rename('/up.bin', '/x.bin', (e) => (e ? rej(e) : res())));
      await new Promise<void>((res, rej) => sftp.unlink('/x.bin', (e) => (e ? rej(e) : res())));
      const err = await new Promise<Error & { code?: number }>((res) => sftp.stat('/x.bin', (e) => res(e as Error & { code?: number })));
      assert.equal(err.code, ST.NO_SUCH_FILE);
      sftp.end();
    } finally {
      client.end();
      await srv.close();
    }
  });
});
