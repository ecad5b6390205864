/**
 * Protocol fuzzing with fast-check through an authenticated raw client: every session request
 * type, global request and channel open, with valid, truncated, oversized-length (0xFFFFFFFF),
 * invalid-UTF-8 and random payloads, plus random bytes as whole messages. After each property
 * the server must still serve a normal exec, answer every want-reply request exactly once while
 * the channel is open, report nothing but ERR_HOOK (the fuzz hooks throw, reject and hang on
 * purpose), and the harness fails the file on any unhandledRejection or uncaughtException.
 * Fixed seeds and bounded runs keep it fast and repeatable.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import ssh2 from 'ssh2';
import {
  defaultSessionHandler,
  type ChannelHandler,
  type Handler,
  type RequestHandler,
  type ServerOptions,
} from '../../src/index.js';
import { connect, delay, exec, startServer, type TestServer } from '../helpers/harness.js';
import { channelRequest, openChannel, sendRaw, Wire } from '../helpers/raw.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const SEED = 0x5eed;
const RUNS = 120;

// ------------------------------------------------------------------------------ the server

/** Reads stdin until EOF (or 3 s), touching everything a handler might read. */
const fuzzHandler: Handler = async (s) => {
  s.on('signal', () => undefined);
  s.on('break', () => undefined);
  void (async () => {
    for await (const w of s.windowChanges()) void w;
  })();
  s.write(`${JSON.stringify(s.command).length} ${s.environ.length} ${s.pty?.term.length ?? -1} ${s.subsystem.length}\n`);
  s.stderr.write('e\n');
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    s.once('end', done);
    s.signal.addEventListener('abort', done, { once: true });
    s.resume();
  });
};

/** Accepts, refuses, throws, rejects or never answers, by the open's data length. */
const fuzzChannel: ChannelHandler = (_ctx, nc) => {
  switch (nc.extraData.length % 5) {
    case 0: {
      const ch = nc.accept();
      ch?.on('error', () => undefined);
      ch?.resume();
      ch?.end('hi');
      return;
    }
    case 1:
      return nc.reject(2, 'no');
    case 2:
      throw new Error('channel handler throws');
    case 3:
      return Promise.reject(new Error('channel handler rejects'));
    default:
      return new Promise<void>(() => undefined);
  }
};

const fuzzRequest: RequestHandler = (_ctx, req) => {
  switch (req.payload.length % 5) {
    case 0:
      return true;
    case 1:
      return { ok: true, payload: Buffer.from('p') };
    case 2:
      throw new Error('request handler throws');
    case 3:
      return Promise.reject(new Error('request handler rejects'));
    default:
      return new Promise<boolean>(() => undefined);
  }
};

const OPTIONS: ServerOptions = {
  hookTimeout: 100,
  handler: fuzzHandler,
  subsystemHandlers: { default: fuzzHandler },
  channelHandlers: { session: defaultSessionHandler, default: fuzzChannel },
  requestHandlers: { 'x-sync': () => false, default: fuzzRequest },
  ptyCallback: (_ctx, pty) => {
    if (pty.term.length % 3 === 1) throw new Error('ptyCallback throws');
    return true;
  },
  sessionRequestCallback: (s) => s.rawCommand !== 'deny',
};

let ts: TestServer;
before(async () => {
  ts = await startServer(OPTIONS);
});
after(async () => {
  await ts.close();
});

/** Errors other than the hook failures the fuzz hooks cause on purpose. */
function unexpectedErrors(): Error[] {
  return ts.errors.filter((e) => (e as Any).code !== 'ERR_HOOK');
}

/** The server still serves an ordinary client. */
async function assertServes(): Promise<void> {
  const c = await connect(ts.port);
  try {
    const r = await exec(c, 'echo hi', { stdin: 'x' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.toString(), '13 0 -1 0\n');
  } finally {
    c.end();
  }
  assert.deepEqual(unexpectedErrors(), []);
}

// ------------------------------------------------------------------------------ the client

/** A connected client that counts the CHANNEL_SUCCESS/FAILURE replies per channel and the global replies. */
async function fuzzClient(): Promise<{
  client: ssh2.Client;
  channelReplies: Map<number, number>;
  globalReplies: boolean[];
  closed: () => boolean;
}> {
  const client = await connect(ts.port);
  client.on('error', () => undefined);
  let isClosed = false;
  client.on('close', () => (isClosed = true));
  const channelReplies = new Map<number, number>();
  const globalReplies: boolean[] = [];
  const h = (client as Any)._protocol._handlers;
  for (const name of ['CHANNEL_SUCCESS', 'CHANNEL_FAILURE']) {
    const orig = h[name];
    h[name] = (p: unknown, recipient: number) => {
      channelReplies.set(recipient, (channelReplies.get(recipient) ?? 0) + 1);
      return orig(p, recipient);
    };
  }
  h.REQUEST_SUCCESS = () => globalReplies.push(true);
  h.REQUEST_FAILURE = () => globalReplies.push(false);
  return { client, channelReplies, globalReplies, closed: () => isClosed };
}

/** Sends a global request with want-reply and waits until `globalReplies` has grown to `expect`, or the connection closed. */
async function syncGlobal(c: Awaited<ReturnType<typeof fuzzClient>>, expect: number, ms = 5000): Promise<void> {
  sendRaw(c.client, new Wire().byte(80).str('x-sync').bool(true).buf());
  const end = Date.now() + ms;
  while (c.globalReplies.length < expect && !c.closed()) {
    if (Date.now() > end) throw new Error(`only ${c.globalReplies.length} of ${expect} global replies`);
    await delay(2);
  }
}

/** Opens a channel with any window and maximum packet size; resolves with it, or with the open failure. */
function openRaw(client: ssh2.Client, type: string, window: number, packetSize: number, data: Buffer): Promise<ssh2.ClientChannel | Error> {
  return new Promise((resolve) => {
    const cb = (err: Error | undefined, ch: ssh2.ClientChannel): void => resolve(err ?? ch);
    (cb as Any).type = type;
    const id = (client as Any)._chanMgr.add(cb);
    sendRaw(client, new Wire().byte(90).str(type).u32(id).u32(window).u32(packetSize).raw(data).buf());
  });
}

/** Closes a client channel and waits for the server's CLOSE (ssh2 emits 'close' once the readable side ended). */
async function closeChannel(ch: ssh2.ClientChannel): Promise<void> {
  const closed = once(ch, 'close');
  ch.resume();
  ch.close();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the server never closed the channel')), 3000))),
  ]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------------------ arbitraries

const u32 = fc.oneof(fc.constantFrom(0, 1, 24, 80, 0x7fffffff, 0xffffffff), fc.nat({ max: 0xffffffff }));
/** Text as SSH strings carry it: UTF-8, shell metacharacters, or bytes that are not UTF-8. */
const text: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'xterm', 'TERM', 'ls -la', "'open", '"$(x)" `y`', 'a|b&&c;d>e', '#comment', '\\', 'INT', 'SIGKILL', 'x'.repeat(300)),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.constant(Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80])),
);
const bool = fc.boolean();
/** Terminal modes: opcode/uint32 pairs (RFC 4254 §8), sometimes without the TTY_OP_END, sometimes noise. */
const modes = fc.oneof(
  fc
    .array(fc.tuple(fc.integer({ min: 1, max: 255 }), u32), { maxLength: 12 })
    .chain((pairs) =>
      bool.map((end) =>
        Buffer.concat([...pairs.map(([op, v]) => new Wire().byte(op).u32(v).buf()), end ? Buffer.from([0]) : Buffer.alloc(0)]),
      ),
    ),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
);

/** Damages a valid payload: truncation, a length field set to 0xFFFFFFFF, trailing junk, or noise. */
function mutate(b: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(b) },
    { weight: 2, arbitrary: fc.nat({ max: b.length }).map((n) => b.subarray(0, n)) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.nat({ max: Math.max(0, b.length - 4) }), fc.constantFrom(0xffffffff, 0x7fffffff, 0x00100000)).map(([i, v]) => {
        if (b.length < 4) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
        const c = Buffer.from(b);
        c.writeUInt32BE(v, i);
        return c;
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((x) => Buffer.concat([b, Buffer.from(x)])) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 128 }).map((x) => Buffer.from(x)) },
  );
}

const w = (): Wire => new Wire();
const SESSION_REQUESTS: Record<string, fc.Arbitrary<Buffer>> = {
  'pty-req': fc.tuple(text, u32, u32, u32, u32, modes).map(([t, c, r, x, y, m]) => w().str(t).u32(c).u32(r).u32(x).u32(y).str(m).buf()),
  env: fc.tuple(text, text).map(([k, v]) => w().str(k).str(v).buf()),
  exec: text.map((t) => w().str(t).buf()),
  shell: fc.constant(Buffer.alloc(0)),
  subsystem: text.map((t) => w().str(t).buf()),
  'window-change': fc.tuple(u32, u32, u32, u32).map(([a, b, c, d]) => w().u32(a).u32(b).u32(c).u32(d).buf()),
  signal: text.map((t) => w().str(t).buf()),
  break: u32.map((v) => w().u32(v).buf()),
  'x11-req': fc.tuple(bool, text, text, u32).map(([s, p, c, n]) => w().bool(s).str(p).str(c).u32(n).buf()),
  'auth-agent-req@openssh.com': fc.constant(Buffer.alloc(0)),
  'keepalive@openssh.com': fc.constant(Buffer.alloc(0)),
  'exit-status': u32.map((v) => w().u32(v).buf()),
  'exit-signal': fc.tuple(text, bool, text, text).map(([s, c, m, l]) => w().str(s).bool(c).str(m).str(l).buf()),
  'eow@openssh.com': fc.constant(Buffer.alloc(0)),
};
const GLOBAL_REQUESTS: Record<string, fc.Arbitrary<Buffer>> = {
  'tcpip-forward': fc.tuple(text, u32).map(([a, p]) => w().str(a).u32(p).buf()),
  'cancel-tcpip-forward': fc.tuple(text, u32).map(([a, p]) => w().str(a).u32(p).buf()),
  'streamlocal-forward@openssh.com': text.map((p) => w().str(p).buf()),
  'cancel-streamlocal-forward@openssh.com': text.map((p) => w().str(p).buf()),
  'no-more-sessions@openssh.com': fc.constant(Buffer.alloc(0)),
  'keepalive@openssh.com': fc.constant(Buffer.alloc(0)),
  'hostkeys-prove-00@openssh.com': fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 3 }).map((keys) => {
    const x = w();
    for (const k of keys) x.str(Buffer.from(k));
    return x.buf();
  }),
};
const CHANNEL_OPENS: Record<string, fc.Arbitrary<Buffer>> = {
  session: fc.constant(Buffer.alloc(0)),
  'direct-tcpip': fc.tuple(text, u32, text, u32).map(([h, p, o, q]) => w().str(h).u32(p).str(o).u32(q).buf()),
  'direct-streamlocal@openssh.com': fc.tuple(text, text, u32).map(([p, r, n]) => w().str(p).str(r).u32(n).buf()),
  x11: fc.tuple(text, u32).map(([a, p]) => w().str(a).u32(p).buf()),
  'forwarded-tcpip': fc.tuple(text, u32, text, u32).map(([h, p, o, q]) => w().str(h).u32(p).str(o).u32(q).buf()),
  'auth-agent@openssh.com': fc.constant(Buffer.alloc(0)),
};

/** A request or open of a known type (valid or damaged data) or of a random name with random data. */
function named(table: Record<string, fc.Arbitrary<Buffer>>): fc.Arbitrary<{ name: string; data: Buffer }> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...Object.keys(table)).chain((name) => table[name]!.chain(mutate).map((data) => ({ name, data }))) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 64 })).map(([name, d]) => ({ name, data: Buffer.from(d) })),
    },
  );
}

const run = <T>(arb: fc.Arbitrary<T>, body: (v: T) => Promise<void>): Promise<void> =>
  fc.assert(fc.asyncProperty(arb, body), { seed: SEED, numRuns: RUNS, endOnFailure: true });

// ------------------------------------------------------------------------------ properties

describe('fuzz (fast-check, fixed seed)', () => {
  it('session requests of every type, valid or damaged, before and after the session started', async () => {
    const c = await fuzzClient();
    try {
      const request = fc.record({ req: named(SESSION_REQUESTS), wantReply: fc.boolean() });
      await run(fc.tuple(fc.boolean(), fc.array(request, { maxLength: 10 })), async ([startFirst, reqs]) => {
        const ch = await openChannel(c.client, 'session');
        const id = (ch as Any).incoming.id as number;
        c.channelReplies.delete(id); // ids are reused once a channel closed
        let wanted = 0;
        if (startFirst) {
          wanted++;
          void channelRequest(c.client, ch, 'exec', true, w().str('started').buf()).catch(() => undefined);
        }
        for (const { req, wantReply } of reqs) {
          if (wantReply) wanted++;
          void channelRequest(c.client, ch, req.name, wantReply, req.data, 10_000).catch(() => undefined);
        }
        const sync = await channelRequest(c.client, ch, 'x-sync', true, Buffer.alloc(0), 10_000);
        assert.equal(sync, false, 'the sync request is answered (false) after every earlier one');
        assert.ok(!c.closed(), 'a bad channel request never ends the connection');
        assert.equal(c.channelReplies.get(id) ?? 0, wanted + 1, 'exactly one reply per want-reply request');
        await closeChannel(ch);
      });
    } finally {
      c.client.end();
    }
    await assertServes();
  });

  it('global requests of every type, valid or damaged, all answered in order', async () => {
    const c = await fuzzClient();
    try {
      const request = fc.record({ req: named(GLOBAL_REQUESTS), wantReply: fc.boolean() });
      await run(fc.array(request, { maxLength: 10 }), async (reqs) => {
        const before = c.globalReplies.length;
        let wanted = 0;
        for (const { req, wantReply } of reqs) {
          if (wantReply) wanted++;
          sendRaw(c.client, w().byte(80).str(req.name).bool(wantReply).raw(req.data).buf());
        }
        await syncGlobal(c, before + wanted + 1);
        assert.ok(!c.closed(), 'a bad global request never ends the connection');
        assert.equal(c.globalReplies.length, before + wanted + 1, 'exactly one reply per want-reply request');
        assert.equal(c.globalReplies.at(-1), false, 'the sync request is answered last');
      });
    } finally {
      c.client.end();
    }
    await assertServes();
  });

  it('channel opens of every type with any window, maximum packet size and data', async () => {
    const c = await fuzzClient();
    try {
      const packet = fc.oneof(fc.constantFrom(0, 1, 9, 32768, 0xffffffff), fc.nat({ max: 0xffffffff }));
      const open = fc.record({ req: named(CHANNEL_OPENS), window: u32, packet, exec: fc.boolean() });
      await run(fc.array(open, { minLength: 1, maxLength: 4 }), async (opens) => {
        const results = await Promise.all(opens.map((o) => openRaw(c.client, o.req.name, o.window, o.packet, o.req.data)));
        for (const [i, r] of results.entries()) {
          if (r instanceof Error) {
            assert.ok(typeof (r as Any).reason === 'number', `an open failure with a reason code: ${r.message}`);
            continue;
          }
          if (opens[i]!.req.name === 'session' && opens[i]!.exec) {
            await channelRequest(c.client, r, 'exec', true, w().str('x').buf(), 10_000);
            r.end();
          }
          await closeChannel(r);
        }
        assert.ok(!c.closed(), 'a bad channel open never ends the connection');
        assert.ok(results.every((r, i) => !(opens[i]!.packet === 0) || r instanceof Error), 'maximum packet size 0 is refused');
      });
      // Everything is closed again: the connection still has all its sessions.
      for (let i = 0; i < 10; i++) await openChannel(c.client, 'session');
    } finally {
      c.client.end();
    }
    await assertServes();
  });

  it('random bytes as whole messages: the server may end that connection, never the process', async () => {
    let c = await fuzzClient();
    let ended = 0;
    try {
      const type = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 80, max: 100 }));
      const message = fc.tuple(type, fc.uint8Array({ maxLength: 200 })).map(([t, rest]) => Buffer.concat([Buffer.from([t]), Buffer.from(rest)]));
      await run(fc.array(message, { minLength: 1, maxLength: 3 }), async (messages) => {
        if (c.closed()) {
          ended++;
          c = await fuzzClient();
        }
        for (const m of messages) sendRaw(c.client, m);
        // Either the server answers a request sent after the junk, or it ends the connection.
        await syncGlobal(c, c.globalReplies.length + 1).catch((err: Error) => {
          if (!c.closed()) throw err;
        });
      });
    } finally {
      c.client.end();
    }
    assert.ok(ended < RUNS, 'most junk is survived by the connection');
    await assertServes();
  });
});

// ------------------------------------------------------------------------------ floods

describe('floods on one connection', () => {
  it('1 000 channel opens: 10 sessions and up to maxChannels others accepted, the rest refused, then it still works', async () => {
    const c = await fuzzClient();
    try {
      const types = ['session', 'x-fuzz', 'direct-tcpip', 'unknown-type'];
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => openRaw(c.client, types[i % 4]!, 2 * 1024 * 1024, 32768, Buffer.alloc(i % 4 === 1 ? 5 : 0))),
      );
      const accepted = results.filter((r): r is ssh2.ClientChannel => !(r instanceof Error));
      const sessions = accepted.filter((r) => (r as Any).type === 'session');
      assert.equal(sessions.length, 10);
      assert.ok(accepted.length <= 256, `${accepted.length} channels accepted`);
      assert.ok(results.filter((r) => r instanceof Error).every((e) => typeof (e as Any).reason === 'number'));
      await Promise.all(accepted.map((ch) => closeChannel(ch)));
      const ch = await openChannel(c.client, 'session');
      await closeChannel(ch);
      assert.ok(!c.closed());
      assert.equal((await exec(c.client, 'x', { stdin: '' })).code, 0);
    } finally {
      c.client.end();
    }
    await assertServes();
  });

  it('10 000 env requests, valid and damaged, with and without want-reply: each answered once, 256 kept', async () => {
    const c = await fuzzClient();
    try {
      const ch = await openChannel(c.client, 'session');
      const id = (ch as Any).incoming.id as number;
      const payloads = fc.sample(named({ env: SESSION_REQUESTS.env! }), { seed: SEED, numRuns: 10_000 });
      let wanted = 0;
      for (const [i, p] of payloads.entries()) {
        const wantReply = i % 3 !== 0;
        if (wantReply) wanted++;
        void channelRequest(c.client, ch, 'env', wantReply, p.data, 20_000).catch(() => undefined);
      }
      assert.equal(await channelRequest(c.client, ch, 'x-sync', true, Buffer.alloc(0), 10_000), false);
      assert.equal(c.channelReplies.get(id), wanted + 1);
      const out: Buffer[] = [];
      ch.on('data', (d: Buffer) => out.push(d));
      assert.equal(await channelRequest(c.client, ch, 'exec', true, w().str('x').buf()), true);
      ch.end();
      await once(ch, 'close');
      const environCount = Number(Buffer.concat(out).toString().split(' ')[1]);
      assert.ok(environCount > 0 && environCount <= 256, `${environCount} kept`);
    } finally {
      c.client.end();
    }
    await assertServes();
  });

  it('pipelined global requests are answered in order: 3 000 without hooks at once, 1 000 behind slow hooks; 1 025 behind a hung hook end the connection', async () => {
    const server = await startServer({
      hookTimeout: 0,
      requestHandlers: {
        'x-slow': () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 1)),
        'x-hung': () => new Promise<boolean>(() => undefined),
        'x-yes': () => true,
      },
    });
    const closes: unknown[] = [];
    server.server.on('connection', (ctx) => ctx.signal.addEventListener('abort', () => closes.push(ctx.signal.reason)));
    const pipeline = async (names: string[]): Promise<{ replies: boolean[]; closed: boolean }> => {
      const client = await connect(server.port);
      client.on('error', () => undefined);
      let closed = false;
      client.on('close', () => (closed = true));
      const replies: boolean[] = [];
      const h = (client as Any)._protocol._handlers;
      h.REQUEST_SUCCESS = () => replies.push(true);
      h.REQUEST_FAILURE = () => replies.push(false);
      for (const n of names) sendRaw(client, w().byte(80).str(n).bool(true).buf());
      const end = Date.now() + 10_000;
      while (replies.length < names.length && !closed && Date.now() < end) await delay(5);
      client.end();
      return { replies, closed };
    };
    try {
      // Requests no hook answers (unknown names, no-more-sessions) are answered at once: no queue.
      const fast = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? 'no-more-sessions@openssh.com' : 'x-no'));
      assert.deepEqual((await pipeline(fast)).replies, fast.map((n) => n !== 'x-no'));
      const slow = Array.from({ length: 1000 }, (_, i) => (i % 100 === 7 ? 'x-slow' : i % 3 === 0 ? 'x-yes' : 'x-no'));
      assert.deepEqual((await pipeline(slow)).replies, slow.map((n) => n !== 'x-no'));
      const hung = await pipeline(['x-hung', ...Array.from({ length: 1100 }, () => 'x-no')]);
      assert.equal(hung.closed, true, 'more than 1 024 requests waiting behind a hung hook end the connection');
      assert.deepEqual(hung.replies, []);
      assert.ok(closes.some((r) => (r as Any)?.code === 'ERR_CONNECTION_CLOSED' && /too many pending/.test(String((r as Error).message))));
      assert.deepEqual(server.errors, []);
    } finally {
      await server.close();
    }
  });

  it('channel requests answered by a slow hook and at once keep their order', async () => {
    const server = await startServer({
      ptyCallback: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 20)),
      handler: (s) => void s.write('ok'),
    });
    const client = await connect(server.port);
    try {
      const ch = await openChannel(client, 'session');
      const pty = new Wire().str('xterm').u32(80).u32(24).u32(0).u32(0).str(Buffer.from([0])).buf();
      const env = (k: string): Buffer => new Wire().str(k).str('v').buf();
      const answers = await Promise.all([
        channelRequest(client, ch, 'pty-req', true, pty),
        channelRequest(client, ch, 'env', true, env('A')),
        channelRequest(client, ch, 'pty-req', true, pty), // a second pty is refused
        channelRequest(client, ch, 'env', true, env('B')),
        channelRequest(client, ch, 'nope', true),
        channelRequest(client, ch, 'env', true, env('C')),
      ]);
      assert.deepEqual(answers, [true, true, false, true, false, true]);
    } finally {
      client.end();
      await server.close();
    }
  });
});
