/**
 * Hardening over loopback (issue #4): refused connections close cleanly, penalty boxes,
 * maxSessions and maxChannels, server keepalive, requireStrictKex and server-sig-algs,
 * hookTimeout, and bounded memory against hostile, flooding or stalled clients.
 *
 * Distinct loopback addresses (127.0.0.x) stand for distinct sources.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import ssh2 from 'ssh2';
import {
  ChannelRejectReason,
  ConnectionRefusedError,
  defaultSessionHandler,
  directTcpipHandler,
  HookError,
  TimeoutError,
  type Context,
  type ServerOptions,
  type Session,
} from '../../src/index.js';
import { collect, connect, delay, exec, run, ssh, SSH_ARGS, startServer, waitFor, within, type TestServer } from '../helpers/harness.js';
import { channelRequest, globalRequest, openChannel, ptyData, sendRaw, windowData, Wire } from '../helpers/raw.js';
import { runtimeOf } from '../../src/internal/runtime.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const MiB = 1024 * 1024;
v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap plus external memory (Buffers) after two full collections. */
function settledMemory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}


async function withServer(options: ServerOptions, fn: (ts: TestServer) => Promise<void>): Promise<void> {
  const ts = await startServer(options);
  try {
    await fn(ts);
  } finally {
    await ts.close();
  }
}

/** A raw TCP socket from `localAddress` that records what the server sends and when it closes. */
function rawSocket(port: number, localAddress = '127.0.0.1', send?: string) {
  const start = Date.now();
  const sock = net.connect({ port, host: '127.0.0.1', localAddress });
  let bytes = 0;
  const events: string[] = [];
  sock.on('error', (err) => events.push(`error:${(err as NodeJS.ErrnoException).code}`));
  sock.on('data', (d: Buffer) => (bytes += d.length));
  sock.on('end', () => events.push('end'));
  if (send !== undefined) sock.write(send);
  const closed = once(sock, 'close').then(() => ({ ms: Date.now() - start, bytes, events }));
  return { sock, closed, bytes: () => bytes };
}

/** Starts an ssh2 client; resolves with 'ready' or the error that ended it (never hangs: readyTimeout). */
function attempt(port: number, config: ssh2.ConnectConfig = {}): { client: ssh2.Client; result: Promise<'ready' | Error> } {
  const client = new ssh2.Client();
  const result = new Promise<'ready' | Error>((resolve) => {
    client.once('ready', () => resolve('ready'));
    client.once('error', (err) => resolve(err));
    client.once('close', () => resolve(new Error('closed')));
  });
  client.on('error', () => undefined);
  client.connect({ host: '127.0.0.1', port, username: 'testuser', readyTimeout: 10_000, ...config });
  return { client, result };
}

const require = createRequire(import.meta.url);
const { KexInit } = require('ssh2/lib/protocol/kex.js') as { KexInit: new (offer: object) => object };

/** Makes a just-connected ssh2 client offer no strict KEX, like clients from before the Terrapin fixes. */
function dropStrictKex(client: ssh2.Client): void {
  const proto = (client as Any)._protocol;
  const l = proto._offer.lists;
  const side = (s: Any) => ({ cipher: s.cipher.array, mac: s.mac.array, compress: s.compress.array, lang: [] });
  proto._offer = new KexInit({
    kex: (l.kex.array as string[]).filter((k) => k !== 'kex-strict-c-v00@openssh.com'),
    serverHostKey: l.serverHostKey.array,
    cs: side(l.cs),
    sc: side(l.sc),
  });
}

/** A python3 that can import paramiko (Debian's python3-paramiko lives under /usr/bin/python3). */
const python = ['/usr/bin/python3', 'python3'].find((py) => spawnSync(py, ['-c', 'import paramiko']).status === 0);

/** Resolves with the reason once `ctx.signal` aborts. */
function aborted(ctx: Context): Promise<unknown> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) resolve(ctx.signal.reason);
    else ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true });
  });
}

const never = (): Promise<never> => new Promise<never>(() => undefined);

// ---------------------------------------------------------------------------------------------

describe('refused connections close cleanly', () => {
  it('maxConnections: the next client sees EOF and close at once, and connectionFailedCallback gets ERR_CONNECTION_REFUSED', async () => {
    const failures: Error[] = [];
    await withServer({ maxConnections: 1, connectionFailedCallback: (_s, err) => failures.push(err) }, async ({ port }) => {
      const first = await connect(port);
      try {
        const raw = rawSocket(port);
        const r = await within(raw.closed, 1000, 'refused raw socket closing');
        assert.equal(r.bytes, 0, 'no SSH bytes to a refused client');
        assert.ok(r.events.includes('end'), `a FIN, not a reset: ${r.events}`);
        const { result } = attempt(port);
        const res = await within(result, 1000, 'refused ssh2 client ending');
        assert.ok(res instanceof Error && /before handshake/.test(res.message), String(res));
        assert.equal(failures.length, 2);
        for (const f of failures) {
          assert.ok(f instanceof ConnectionRefusedError);
          assert.equal(f.code, 'ERR_CONNECTION_REFUSED');
          assert.equal(f.reason, 'max-connections');
        }
      } finally {
        first.end();
      }
    });
  });

  it('maxConnections frees its slot when a connection closes', async () => {
    await withServer({ maxConnections: 1, handler: (s) => void s.write('ok') }, async ({ port }) => {
      for (let i = 0; i < 3; i++) {
        const c = await connect(port);
        assert.equal((await exec(c, 'x')).stdout.toString(), 'ok');
        const closed = once(c, 'close');
        c.end();
        await closed;
        await delay(20); // the server sees the close
      }
    });
  });

  it('maxStartups "1": a second unauthenticated connection is refused with reason max-startups; authenticated ones do not count', async () => {
    const failures: Error[] = [];
    await withServer({ maxStartups: '1', connectionFailedCallback: (_s, err) => failures.push(err) }, async ({ port }) => {
      const c = await connect(port); // authenticated: no longer a startup
      const holder = rawSocket(port, '127.0.0.1', 'SSH-2.0-holder\r\n');
      await waitFor(() => holder.bytes() > 0, 2000, 'server ident');
      const r = await within(rawSocket(port).closed, 1000, 'refusal');
      assert.equal(r.bytes, 0);
      assert.equal((failures.at(-1) as ConnectionRefusedError).reason, 'max-startups');
      holder.sock.destroy();
      await delay(50);
      const c2 = await connect(port);
      c2.end();
      c.end();
    });
  });

  it('perSourceMaxStartups: a third pending connection from 127.0.0.3 is refused while 127.0.0.2 gets in', async () => {
    const failures: Error[] = [];
    await withServer({ perSourceMaxStartups: 2, connectionFailedCallback: (_s, err) => failures.push(err) }, async ({ port }) => {
      const held = [rawSocket(port, '127.0.0.3'), rawSocket(port, '127.0.0.3')];
      await waitFor(() => held.every((h) => h.bytes() > 0), 2000, 'server idents');
      const r = await within(rawSocket(port, '127.0.0.3').closed, 1000, 'refusal');
      assert.equal(r.bytes, 0);
      assert.equal((failures.at(-1) as ConnectionRefusedError).reason, 'per-source-max-startups');
      const c = await connect(port, { localAddress: '127.0.0.2' });
      c.end();
      for (const h of held) h.sock.destroy();
    });
  });

  it('a connectionFailedCallback that throws on a refusal is reported as ERR_HOOK; the refusal still closes cleanly', async () => {
    await withServer(
      {
        maxConnections: 1,
        connectionFailedCallback: () => {
          throw new Error('boom');
        },
      },
      async ({ port, errors }) => {
        const c = await connect(port);
        const r = await within(rawSocket(port).closed, 1000, 'refusal');
        assert.equal(r.bytes, 0);
        assert.ok(errors.some((e) => e instanceof HookError && e.hook === 'connectionFailedCallback'), String(errors));
        c.end();
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('penalty boxes', () => {
  /** Logs in with a wrong password from `localAddress`; resolves once the server has seen the close. */
  async function failAuth(ts: TestServer, failures: Error[], localAddress: string): Promise<void> {
    const before = failures.length;
    const { result } = attempt(ts.port, { localAddress, password: 'wrong' });
    const res = await within(result, 3000, 'auth failure');
    assert.ok(res instanceof Error && /authentication methods failed/.test(res.message), String(res));
    await waitFor(() => failures.length > before, 2000, 'server-side close');
  }

  it('3 connections from 127.0.0.5 that fail auth box 127.0.0.5 (reason penalty) while 127.0.0.6 still gets in', async () => {
    const failures: Error[] = [];
    await withServer(
      { passwordHandler: (_ctx, pw) => pw === 'right', connectionFailedCallback: (_s, err) => failures.push(err) },
      async (ts) => {
        for (let i = 0; i < 3; i++) await failAuth(ts, failures, '127.0.0.5');
        const { result } = attempt(ts.port, { localAddress: '127.0.0.5', password: 'right' });
        const res = await within(result, 1000, 'refusal');
        assert.ok(res instanceof Error && /before handshake/.test(res.message), String(res));
        const last = failures.at(-1) as ConnectionRefusedError;
        assert.equal(last.code, 'ERR_CONNECTION_REFUSED');
        assert.equal(last.reason, 'penalty');
        const ok = await connect(ts.port, { localAddress: '127.0.0.6', password: 'right' });
        ok.end();
      },
    );
  });

  it('two failures (10 s) are not enough: the box is enforced only from min = 15 s', async () => {
    const failures: Error[] = [];
    await withServer(
      { passwordHandler: (_ctx, pw) => pw === 'right', connectionFailedCallback: (_s, err) => failures.push(err) },
      async (ts) => {
        for (let i = 0; i < 2; i++) await failAuth(ts, failures, '127.0.0.5');
        const ok = await connect(ts.port, { localAddress: '127.0.0.5', password: 'right' });
        ok.end();
      },
    );
  });

  it('an exempt source is never refused', async () => {
    const failures: Error[] = [];
    await withServer(
      {
        passwordHandler: (_ctx, pw) => pw === 'right',
        connectionFailedCallback: (_s, err) => failures.push(err),
        penalties: { exempt: ['127.0.0.4/31'] },
      },
      async (ts) => {
        for (let i = 0; i < 5; i++) await failAuth(ts, failures, '127.0.0.5');
        assert.ok(!failures.some((f) => f instanceof ConnectionRefusedError));
        const ok = await connect(ts.port, { localAddress: '127.0.0.5', password: 'right' });
        ok.end();
      },
    );
  });

  it('two handshake timeouts (graceExceeded, 10 s each) box the source', async () => {
    const failures: Error[] = [];
    await withServer({ handshakeTimeout: 300, connectionFailedCallback: (_s, err) => failures.push(err) }, async ({ port }) => {
      for (let i = 0; i < 2; i++) {
        const r = await within(rawSocket(port, '127.0.0.7', 'SSH-2.0-slow\r\n').closed, 2000, 'handshake timeout');
        assert.ok(r.bytes > 0 && r.ms >= 250, `cut by the timer after ${r.ms} ms`);
        await waitFor(() => failures.length === i + 1, 1000, 'failure reported');
        assert.ok(failures[i] instanceof TimeoutError);
      }
      const r = await within(rawSocket(port, '127.0.0.7', 'SSH-2.0-slow\r\n').closed, 1000, 'refusal');
      assert.equal(r.bytes, 0);
      assert.equal((failures.at(-1) as ConnectionRefusedError).reason, 'penalty');
    });
  });

  it('connections that end without trying to authenticate accrue noAuth', async () => {
    const failures: Error[] = [];
    await withServer({ penalties: { noAuth: 8 }, connectionFailedCallback: (_s, err) => failures.push(err) }, async (ts) => {
      let seen = 0;
      ts.server.on('connection', () => seen++);
      for (let i = 0; i < 2; i++) {
        const raw = rawSocket(ts.port, '127.0.0.8', 'SSH-2.0-quitter\r\n');
        await waitFor(() => seen === i + 1, 2000, "'connection'");
        raw.sock.end();
        await raw.closed;
        await waitFor(() => failures.length === i + 1, 1000, 'failure reported');
      }
      const r = await within(rawSocket(ts.port, '127.0.0.8').closed, 1000, 'refusal');
      assert.equal(r.bytes, 0);
      assert.equal((failures.at(-1) as ConnectionRefusedError).reason, 'penalty');
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('maxSessions and maxChannels', () => {
  it('the 11th session channel is refused "administratively prohibited"; closing one lets a new one open', async () => {
    await withServer({}, async ({ port }) => {
      const c = await connect(port);
      try {
        const open: ssh2.ClientChannel[] = [];
        for (let i = 0; i < 10; i++) open.push(await openChannel(c, 'session'));
        await assert.rejects(openChannel(c, 'session'), (err: Any) => {
          assert.equal(err.reason, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED);
          assert.match(err.message, /too many sessions/);
          return true;
        });
        const closed = once(open[3]!.resume(), 'close'); // ssh2 emits 'close' once the readable side ended
        open[3]!.close();
        await closed;
        await delay(20);
        open[3] = await openChannel(c, 'session');
        await assert.rejects(openChannel(c, 'session'));
        // Another connection has its own 10.
        const other = await connect(port);
        for (let i = 0; i < 10; i++) await openChannel(other, 'session');
        other.end();
      } finally {
        c.end();
      }
    });
  });

  it('maxSessions 0 refuses every session but not other channel types', async () => {
    await withServer(
      { maxSessions: 0, channelHandlers: { session: defaultSessionHandler, 'x-test': (_ctx, nc) => void nc.accept() } },
      async ({ port }) => {
        const c = await connect(port);
        await assert.rejects(openChannel(c, 'session'), { reason: ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED });
        await openChannel(c, 'x-test');
        c.end();
      },
    );
  });

  it('maxChannels counts every channel type: the 5th is refused "resource shortage"', async () => {
    await withServer(
      { maxChannels: 4, channelHandlers: { session: defaultSessionHandler, 'x-test': (_ctx, nc) => void nc.accept() } },
      async ({ port }) => {
        const c = await connect(port);
        const chans = [await openChannel(c, 'session')];
        for (let i = 0; i < 3; i++) chans.push(await openChannel(c, 'x-test'));
        for (const type of ['x-test', 'session']) {
          await assert.rejects(openChannel(c, type), (err: Any) => {
            assert.equal(err.reason, ChannelRejectReason.RESOURCE_SHORTAGE);
            assert.match(err.message, /too many channels/);
            return true;
          });
        }
        const closed = once(chans[1]!.resume(), 'close');
        chans[1]!.close();
        await closed;
        await delay(20);
        await openChannel(c, 'x-test');
        c.end();
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('a maximum packet size of 0 (ssh2 would loop forever writing to such a channel)', () => {
  it('a channel open with it is refused, and the server stays responsive', async () => {
    await withServer({ handler: (s) => void s.write('ok') }, async ({ port }) => {
      const c = await connect(port);
      const err = await new Promise<Any>((resolve) => {
        const cb = (e: Error | undefined, ch: ssh2.ClientChannel): void => resolve(e ?? ch);
        (cb as Any).type = 'session';
        const id = (c as Any)._chanMgr.add(cb);
        sendRaw(c, new Wire().byte(90).str('session').u32(id).u32(2 * MiB).u32(0).buf());
      });
      assert.ok(err instanceof Error, 'refused');
      assert.equal((err as Any).reason, ChannelRejectReason.CONNECT_FAILED);
      assert.match(String((err as Any).message), /maximum packet size 0/);
      assert.equal((await within(exec(c, 'x'), 2000, 'exec')).stdout.toString(), 'ok');
      c.end();
    });
  });

  it('a client that confirms a channel the server opened with it gets the channel closed; the open fails', async () => {
    const ctxs: Context[] = [];
    await withServer({ handler: (s) => void s.write('ok') }, async (ts) => {
      ts.server.on('connection', (ctx) => ctxs.push(ctx));
      const c = await connect(ts.port);
      const closes: number[] = [];
      const h = (c as Any)._protocol._handlers;
      h.CHANNEL_OPEN = (_p: unknown, info: { sender: number }) =>
        sendRaw(c, new Wire().byte(91).u32(info.sender).u32(77).u32(2 * MiB).u32(0).buf());
      const onClose = h.CHANNEL_CLOSE;
      h.CHANNEL_CLOSE = (p: unknown, recipient: number) => (recipient === 77 ? closes.push(recipient) : onClose(p, recipient));
      const conn = runtimeOf(ctxs[0]!)!.conn as Any;
      const err = await within(
        new Promise<Error | undefined>((resolve) => conn.forwardOut('127.0.0.1', 1, '127.0.0.1', 2, (e: Error | undefined) => resolve(e))),
        2000,
        'forwardOut',
      );
      assert.match(String(err?.message), /maximum packet size 0/);
      await waitFor(() => closes.length === 1, 2000, 'CHANNEL_CLOSE to the client');
      assert.equal((await within(exec(c, 'x'), 2000, 'exec')).stdout.toString(), 'ok');
      c.end();
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('requests that arrive after the server closed the channel', () => {
  it('get no reply: nothing follows our CHANNEL_CLOSE (RFC 4254 §5.3)', async () => {
    await withServer({ handler: async (s) => void (await delay(50)) }, async ({ port }) => {
      const c = await connect(port);
      const ch = await openChannel(c, 'session');
      const id = (ch as Any).incoming.id as number;
      const events: string[] = [];
      const h = (c as Any)._protocol._handlers;
      for (const name of ['CHANNEL_SUCCESS', 'CHANNEL_FAILURE', 'CHANNEL_CLOSE']) {
        const orig = h[name];
        h[name] = (p: unknown, recipient: number, ...rest: unknown[]) => {
          if (recipient === id) events.push(name);
          return orig(p, recipient, ...rest);
        };
      }
      assert.equal(await channelRequest(c, ch, 'exec', true, new Wire().str('x').buf()), true);
      const sock = (c as Any)._sock as net.Socket;
      sock.pause(); // the client does not see the server's CLOSE yet, so the channel stays "closing" on the server
      await delay(200);
      for (let i = 0; i < 20; i++) void channelRequest(c, ch, 'env', true, new Wire().str(`K${i}`).str('v').buf()).catch(() => undefined);
      await delay(100);
      const closed = once(ch.resume(), 'close');
      sock.resume();
      await within(closed, 2000, 'close');
      await delay(50);
      assert.deepEqual(events, ['CHANNEL_SUCCESS', 'CHANNEL_CLOSE']);
      c.end();
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('server keepalive', () => {
  it('interval 200 ms × 2: a client that stops reading is cut with reason keepalive; a responsive idle client stays', async () => {
    const ctxs: Context[] = [];
    await withServer({ keepaliveInterval: 200, keepaliveCountMax: 2, handler: (s) => void s.write('ok') }, async (ts) => {
      ts.server.on('connection', (ctx) => ctxs.push(ctx));
      const stalled = await connect(ts.port);
      stalled.on('error', () => undefined);
      const idle = await connect(ts.port);
      let probes = 0;
      const h = (idle as Any)._protocol._handlers;
      const onGlobal = h.GLOBAL_REQUEST;
      h.GLOBAL_REQUEST = (...args: unknown[]) => {
        probes++;
        return onGlobal(...args);
      };
      const start = Date.now();
      (stalled as Any)._sock.pause();
      const reason = await within(aborted(ctxs[0]!), 3000, 'keepalive cut');
      const ms = Date.now() - start;
      assert.ok(reason instanceof TimeoutError, String(reason));
      assert.equal(reason.kind, 'keepalive');
      assert.ok(ms >= 400 && ms < 2000, `cut after ${ms} ms (interval 200 × 3 checks)`);
      await delay(600);
      assert.equal(ctxs[1]!.signal.aborted, false, 'the idle client that answers keepalives stays');
      assert.ok(probes >= 2, `the idle client was probed (${probes})`);
      assert.equal((await exec(idle, 'x')).stdout.toString(), 'ok');
      idle.end();
      stalled.destroy();
    });
  });

  it('is off by default: a silent client stays connected and gets no keepalive', async () => {
    const ctxs: Context[] = [];
    await withServer({}, async (ts) => {
      ts.server.on('connection', (ctx) => ctxs.push(ctx));
      const c = await connect(ts.port);
      let probes = 0;
      const h = (c as Any)._protocol._handlers;
      const onGlobal = h.GLOBAL_REQUEST;
      h.GLOBAL_REQUEST = (...args: unknown[]) => {
        probes++;
        return onGlobal(...args);
      };
      await delay(1100);
      assert.equal(probes, 0);
      assert.equal(ctxs[0]!.signal.aborted, false);
      c.end();
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('requireStrictKex (Terrapin) and server-sig-algs', () => {
  it('drops a client without strict KEX with ERR_STRICT_KEX before any auth hook runs; OpenSSH (strict) gets in', async () => {
    const failures: Error[] = [];
    let authCalls = 0;
    await withServer(
      {
        requireStrictKex: true,
        handler: (s) => void s.write('in'),
        connectionFailedCallback: (_s, err) => failures.push(err),
        passwordHandler: () => (authCalls++, true),
      },
      async ({ port }) => {
        const { client, result } = attempt(port, { password: 'x' });
        dropStrictKex(client);
        const res = await within(result, 3000, 'drop');
        assert.ok(res instanceof Error, String(res));
        assert.match(res.message, /strict key exchange/);
        await waitFor(() => failures.length === 1, 1000, 'failure reported');
        assert.equal((failures[0] as Any).code, 'ERR_STRICT_KEX');
        assert.equal(authCalls, 0);
        // A strict ssh2 client gets in.
        const ok = await connect(port, { password: 'x' });
        assert.equal((await exec(ok, 'x')).stdout.toString(), 'in');
        ok.end();
      },
    );
    await withServer({ requireStrictKex: true, handler: (s) => void s.write('in') }, async ({ port }) => {
      const r = await ssh(port, ['x']);
      assert.equal(r.code, 0, String(r.stderr));
      assert.equal(r.stdout.toString(), 'in');
    });
  });

  it('is off by default: a client without strict KEX gets in', async () => {
    await withServer({ handler: (s) => void s.write('in') }, async ({ port }) => {
      const { client, result } = attempt(port);
      dropStrictKex(client);
      assert.equal(await within(result, 3000, 'login'), 'ready');
      assert.equal((await exec(client, 'x')).stdout.toString(), 'in');
      client.end();
    });
  });

  it('paramiko 2.12 (no strict KEX) is dropped with requireStrictKex and let in without', async (t) => {
    if (!python) {
      assert.ok(!process.env.CI, 'python3-paramiko must be installed in CI (.ci/run installs it)');
      return t.skip('python3-paramiko is not installed');
    }
    const script = `
import json, sys, paramiko
try:
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect('127.0.0.1', port=int(sys.argv[1]), username='p', password='p', look_for_keys=False, allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=5)
    _, so, _ = c.exec_command('x', timeout=5)
    print(json.dumps({'out': so.read().decode()}))
except Exception as e:
    print(json.dumps({'error': type(e).__name__}))
`;
    for (const requireStrictKex of [true, false]) {
      const failures: Error[] = [];
      await withServer(
        { requireStrictKex, passwordHandler: () => true, handler: (s) => void s.write('in'), connectionFailedCallback: (_s, e) => failures.push(e) },
        async ({ port }) => {
          const r = await run(python, ['-c', script, String(port)], { timeoutMs: 15_000, env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
          const res = JSON.parse(r.stdout.toString().trim().split('\n').at(-1)!) as { out?: string; error?: string };
          if (requireStrictKex) {
            assert.ok(res.error, JSON.stringify(res));
            await waitFor(() => failures.length > 0, 1000, 'failure reported');
            assert.equal((failures[0] as Any).code, 'ERR_STRICT_KEX');
          } else {
            assert.deepEqual(res, { out: 'in' });
          }
        },
      );
    }
  });

  it('ssh -vvv shows server-sig-algs with every algorithm we verify, rsa-sha2-512 included', async () => {
    await withServer({}, async ({ port }) => {
      const r = await ssh(port, ['-vvv', 'true']);
      const line = r.stderr
        .toString()
        .split('\n')
        .find((l) => l.includes('server-sig-algs='));
      assert.ok(line, 'the client logged server-sig-algs');
      assert.match(line, /server-sig-algs=<ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256>/);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('hookTimeout (200 ms): a hook that never settles is a deny, and stalls nothing else', () => {
  const HOOK_MS = 200;
  const options: ServerOptions = {
    hookTimeout: HOOK_MS,
    handler: (s) => void s.write('ok'),
    channelHandlers: {
      session: defaultSessionHandler,
      'x-never': never,
      'x-thenable': () => ({ then: () => undefined }) as never,
    },
    requestHandlers: { 'x-never': never },
    ptyCallback: (_ctx, pty) => (pty.term === 'never' ? never() : true),
    sessionRequestCallback: (s) => (s.rawCommand === 'never' ? never() : true),
  };

  /** Runs `stuck` and, meanwhile, an exec on another connection; checks the timing and the report. */
  async function check(ts: TestServer, hook: string, stuck: () => Promise<unknown>): Promise<unknown> {
    const other = await connect(ts.port);
    const start = Date.now();
    const answer = stuck();
    const r = await exec(other, 'x');
    const otherMs = Date.now() - start;
    assert.equal(r.stdout.toString(), 'ok');
    const result = await within(answer, 3000, `${hook} answer`);
    const ms = Date.now() - start;
    assert.ok(otherMs < ms, `the other connection (${otherMs} ms) did not wait for ${hook} (${ms} ms)`);
    assert.ok(ms >= HOOK_MS - 20 && ms < 2000, `${hook} answered after ${ms} ms`);
    await waitFor(() => ts.errors.some((e) => e instanceof HookError && e.hook === hook), 1000, `${hook} ERR_HOOK`);
    const err = ts.errors.find((e) => e instanceof HookError && e.hook === hook)!;
    assert.equal((err as HookError).code, 'ERR_HOOK');
    assert.match(err.message, /did not settle within 200 ms/);
    other.end();
    return result;
  }

  it('a channel handler (a Promise or a bare thenable) → the open is refused', async () => {
    await withServer(options, async (ts) => {
      const c = await connect(ts.port);
      for (const type of ['x-never', 'x-thenable']) {
        const res = await check(ts, `channelHandlers.${type}`, () => openChannel(c, type).then(
          () => 'accepted',
          (err: Any) => err.reason,
        ));
        assert.equal(res, ChannelRejectReason.CONNECT_FAILED);
      }
      c.end();
    });
  });

  it('a global request handler → answered false', async () => {
    await withServer(options, async (ts) => {
      const c = await connect(ts.port);
      const res = await check(ts, 'requestHandlers.x-never', () => globalRequest(c, 'x-never', Buffer.alloc(0), 5000));
      assert.deepEqual(res, { ok: false });
      c.end();
    });
  });

  it('ptyCallback → the pty is refused; sessionRequestCallback → the exec is refused', async () => {
    await withServer(options, async (ts) => {
      const c = await connect(ts.port);
      const ch = await openChannel(c, 'session');
      assert.equal(await check(ts, 'ptyCallback', () => channelRequest(c, ch, 'pty-req', true, ptyData('never', 80, 24), 5000)), false);
      assert.equal(
        await check(ts, 'sessionRequestCallback', () => channelRequest(c, ch, 'exec', true, new Wire().str('never').buf(), 5000)),
        false,
      );
      // The session is still usable afterwards.
      const done = collect(ch);
      assert.equal(await channelRequest(c, ch, 'exec', true, new Wire().str('x').buf()), true);
      assert.equal((await done).stdout.toString(), 'ok');
      c.end();
    });
  });

  it('a bannerHandler → no banner, and the login goes on', async () => {
    await withServer({ ...options, bannerHandler: never }, async (ts) => {
      const start = Date.now();
      const c = await connect(ts.port);
      const ms = Date.now() - start;
      assert.ok(ms >= HOOK_MS - 20, `login waited ${ms} ms for the banner`);
      assert.ok(ts.errors.some((e) => e instanceof HookError && e.hook === 'bannerHandler'));
      assert.equal((await exec(c, 'x')).stdout.toString(), 'ok');
      c.end();
    });
  });

  it('auth hooks that never settle are cut by handshakeTimeout; other logins go on meanwhile', async () => {
    const failures: Error[] = [];
    const privateKey = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).private;
    await withServer(
      {
        handshakeTimeout: 500,
        handler: (s) => void s.write('ok'),
        passwordHandler: (ctx, pw) => (ctx.user === 'stuck' ? never() : pw === 'ok'),
        publicKeyHandler: (ctx) => (ctx.user === 'stuck' ? never() : false),
        connectionFailedCallback: (_s, err) => failures.push(err),
      },
      async ({ port }) => {
        const start = Date.now();
        const stuck = [
          attempt(port, { username: 'stuck', password: 'x' }),
          attempt(port, { username: 'stuck', privateKey }),
        ];
        const c = await connect(port, { username: 'fine', password: 'ok' });
        assert.equal((await exec(c, 'x')).stdout.toString(), 'ok');
        assert.ok(Date.now() - start < 450, 'the other login did not wait');
        for (const s of stuck) {
          const res = await within(s.result, 3000, 'handshake timeout');
          assert.ok(res instanceof Error, String(res));
        }
        const ms = Date.now() - start;
        assert.ok(ms >= 450 && ms < 2500, `cut after ${ms} ms`);
        await waitFor(() => failures.length === 2, 1000, 'failures reported');
        for (const f of failures) assert.ok(f instanceof TimeoutError && f.kind === 'handshake', String(f));
        c.end();
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('bounded memory', () => {
  it('10 000 env requests: every want-reply answered, only 256 (or 64 KiB) stored', async () => {
    let environ: string[] = [];
    await withServer({ handler: (s) => void ((environ = s.environ), s.write('ok')) }, async ({ port }) => {
      const c = await connect(port);
      const ch = await openChannel(c, 'session');
      const replies = await Promise.all(
        Array.from({ length: 10_000 }, (_, i) => channelRequest(c, ch, 'env', true, new Wire().str(`K${i}`).str('v').buf(), 10_000)),
      );
      assert.equal(replies.filter((r) => r === true).length, 256);
      assert.equal(replies.filter((r) => r === false).length, 10_000 - 256);
      const done = collect(ch);
      assert.equal(await channelRequest(c, ch, 'exec', true, new Wire().str('x').buf()), true);
      assert.equal((await done).stdout.toString(), 'ok');
      assert.equal(environ.length, 256);
      assert.deepEqual(environ.slice(0, 2), ['K0=v', 'K1=v']);
      // The byte bound: three 20 KiB values fit in 64 KiB, a fourth does not, a small one still does.
      const ch2 = await openChannel(c, 'session');
      const big = 'x'.repeat(20 * 1024);
      const sizes: Array<boolean | undefined> = [];
      for (const name of ['A', 'B', 'C', 'D']) sizes.push(await channelRequest(c, ch2, 'env', true, new Wire().str(name).str(big).buf()));
      assert.deepEqual(sizes, [true, true, true, false]);
      assert.equal(await channelRequest(c, ch2, 'env', true, new Wire().str('E').str('small').buf()), true);
      c.end();
    });
  });

  it('300 signals before a listener: the first 128 are delivered, every request answered', async () => {
    let delivered: string[] = [];
    await withServer(
      {
        handler: async (s) => {
          for await (const chunk of s) if (String(chunk).includes('go')) break;
          const got: string[] = [];
          s.on('signal', (name) => got.push(name));
          await delay(50);
          delivered = got;
        },
      },
      async ({ port }) => {
        const c = await connect(port);
        const ch = await openChannel(c, 'session');
        const done = collect(ch);
        await channelRequest(c, ch, 'exec', true, new Wire().str('x').buf());
        const replies = await Promise.all(
          Array.from({ length: 300 }, (_, i) => channelRequest(c, ch, 'signal', true, new Wire().str(`S${i}`).buf())),
        );
        assert.equal(replies.length, 300);
        assert.ok(replies.every((r) => typeof r === 'boolean'));
        ch.write('go');
        await done;
        assert.deepEqual(delivered, Array.from({ length: 128 }, (_, i) => `S${i}`));
        c.end();
      },
    );
  });

  it('1 000 window changes to an unread windowChanges() iterator keep only the newest 64', async () => {
    let seen: number[] = [];
    await withServer(
      {
        handler: async (s) => {
          const it = s.windowChanges()[Symbol.asyncIterator]();
          await it.next(); // the initial size
          s.write('ready');
          for await (const chunk of s) if (String(chunk).includes('go')) break;
          const got: number[] = [];
          for (;;) {
            const next = await Promise.race([it.next(), delay(100).then(() => undefined)]);
            if (!next || next.done) break;
            got.push(next.value.width);
          }
          seen = got;
          await it.return?.();
        },
      },
      async ({ port }) => {
        const c = await connect(port);
        const ch = await openChannel(c, 'session');
        const done = collect(ch);
        const ready = once(ch, 'data');
        await channelRequest(c, ch, 'pty-req', true, ptyData('xterm', 80, 24));
        await channelRequest(c, ch, 'exec', true, new Wire().str('x').buf());
        await ready;
        for (let i = 1; i <= 1000; i++) await channelRequest(c, ch, 'window-change', false, windowData(i, 24));
        assert.equal(await channelRequest(c, ch, 'window-change', true, windowData(1001, 24)), true);
        ch.write('go');
        await done;
        assert.equal(seen.length, 64);
        assert.deepEqual(seen.slice(-2), [1000, 1001]);
        c.end();
      },
    );
  });

  it('a client that stops reading while the handler writes 50 MiB costs bounded memory; it all arrives once it reads', async () => {
    let written = 0;
    let finished = false;
    await withServer(
      {
        handler: async (s) => {
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          while (written < 50 * MiB && !s.signal.aborted) {
            written += chunk.length;
            if (!s.write(chunk)) await once(s, 'drain', { signal: s.signal }).catch(() => undefined);
          }
          finished = true;
        },
      },
      async ({ port }) => {
        const c = await connect(port);
        const base = settledMemory();
        const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
          c.exec('x', (err, channel) => (err ? reject(err) : resolve(channel))),
        );
        (c as Any)._sock.pause();
        let last = -1;
        for (let i = 0; i < 50 && written !== last; i++) {
          last = written;
          await delay(100);
        }
        assert.equal(finished, false);
        assert.ok(written < 12 * MiB, `the writer waits for 'drain' (${(written / MiB).toFixed(1)} MiB accepted)`);
        const growth = settledMemory() - base;
        assert.ok(growth < 10 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB`);
        let received = 0;
        ch.on('data', (d: Buffer) => (received += d.length));
        const closed = once(ch, 'close');
        (c as Any)._sock.resume();
        await within(closed, 10_000, 'the rest of the 50 MiB');
        assert.equal(received, 50 * MiB);
        c.end();
      },
    );
  });

  it('a client that grants a 4 GiB window and stops reading, or starts a re-key and never finishes it, costs bounded memory', async () => {
    const written: number[] = [];
    await withServer(
      {
        handler: async (s) => {
          const i = written.push(0) - 1;
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          while (written[i]! < 200 * MiB && !s.signal.aborted) {
            written[i]! += chunk.length;
            if (!s.write(chunk)) await once(s, 'drain', { signal: s.signal }).catch(() => undefined);
          }
        },
      },
      async ({ port }) => {
        for (const stall of ['stop reading', 'unfinished re-key'] as const) {
          const c = await connect(port);
          c.on('error', () => undefined);
          const base = settledMemory();
          const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
            const cb = (err: Error | undefined, channel: ssh2.ClientChannel): void => (err ? reject(err) : resolve(channel));
            (cb as Any).type = 'session';
            const id = (c as Any)._chanMgr.add(cb);
            sendRaw(c, new Wire().byte(90).str('session').u32(id).u32(0xffffffff).u32(32768).buf());
          });
          const i = written.length;
          void channelRequest(c, ch, 'exec', true, new Wire().str('x').buf(), 60_000).catch(() => undefined);
          await waitFor(() => written.length > i, 2000, 'the handler');
          const sock = (c as Any)._sock as net.Socket;
          if (stall === 'stop reading') sock.pause();
          else {
            // KEXINIT, then the client reads and drops everything: the server queues its packets for after the re-key.
            (c as Any)._protocol.rekey();
            sock.removeAllListeners('data');
            sock.on('data', () => undefined);
          }
          let last = -1;
          for (let k = 0; k < 50 && written[i] !== last; k++) {
            last = written[i]!;
            await delay(100);
          }
          assert.ok(written[i]! < 16 * MiB, `${stall}: the writer waits (${(written[i]! / MiB).toFixed(1)} MiB accepted of 200)`);
          const growth = settledMemory() - base;
          assert.ok(growth < 16 * MiB, `${stall}: memory grew by ${(growth / MiB).toFixed(1)} MiB`);
          c.destroy();
        }
      },
    );
  });

  it('a forwarded connection (ssh -L) to a client that grants a 4 GiB window and stops reading costs bounded memory', { timeout: 30_000 }, async () => {
    // The forward's target writes as fast as its socket takes it; what it got rid of is what the
    // server read and is holding, since the client reads nothing.
    let written = 0;
    const sockets = new Set<net.Socket>();
    const target = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => undefined);
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      const pump = (): void => {
        while (written < 200 * MiB && !sock.destroyed) {
          written += chunk.length;
          if (!sock.write(chunk)) return void sock.once('drain', pump);
        }
      };
      pump();
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetPort = (target.address() as net.AddressInfo).port;
    try {
      const channelHandlers = { session: defaultSessionHandler, 'direct-tcpip': directTcpipHandler };
      await withServer({ channelHandlers, localPortForwardingCallback: () => true }, async ({ port }) => {
        const c = await connect(port);
        c.on('error', () => undefined);
        const base = settledMemory();
        await new Promise<ssh2.ClientChannel>((resolve, reject) => {
          const cb = (err: Error | undefined, channel: ssh2.ClientChannel): void => (err ? reject(err) : resolve(channel));
          (cb as Any).type = 'direct-tcpip';
          const id = (c as Any)._chanMgr.add(cb);
          const open = new Wire().byte(90).str('direct-tcpip').u32(id).u32(0xffffffff).u32(32768);
          sendRaw(c, open.str('127.0.0.1').u32(targetPort).str('127.0.0.1').u32(40000).buf());
        });
        ((c as Any)._sock as net.Socket).pause();
        let last = -1;
        for (let k = 0; k < 50 && written !== last; k++) {
          last = written;
          await delay(100);
        }
        assert.ok(written < 16 * MiB, `the target's writes wait (${(written / MiB).toFixed(1)} MiB accepted of 200)`);
        const growth = settledMemory() - base;
        assert.ok(growth < 16 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB`);
        c.destroy();
      });
    } finally {
      for (const sock of sockets) sock.destroy();
      target.close();
    }
  });

  it('stdin the handler does not read stops at the window, also from a client that ignores the window', async () => {
    const sessions: Session[] = [];
    await withServer(
      { handler: (s) => (sessions.push(s), new Promise<void>((resolve) => s.signal.addEventListener('abort', () => resolve()))) },
      async ({ port }) => {
        const c = await connect(port);
        // A well-behaved client: ssh2 stops sending once the window is used up.
        const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
          c.exec('x', (err, channel) => (err ? reject(err) : resolve(channel))),
        );
        const chunk = Buffer.alloc(32 * 1024);
        for (let i = 0; i < 256; i++) ch.write(chunk); // 8 MiB offered
        await waitFor(() => sessions.length === 1 && (ch as Any).outgoing.window === 0, 5000, 'the window to close');
        await delay(200);
        const s = sessions[0]!;
        assert.ok(s.readableLength <= 4 * MiB, `server buffered ${(s.readableLength / MiB).toFixed(2)} MiB`);
        assert.ok(ch.writableLength >= 4 * MiB, 'the client holds the rest');

        // A hostile client sends CHANNEL_DATA past the window (odd sizes, so it never hits 0 exactly).
        const ch2 = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
          c.exec('y', (err, channel) => (err ? reject(err) : resolve(channel))),
        );
        await waitFor(() => sessions.length === 2, 2000, 'second session');
        const id = (ch2 as Any).outgoing.id;
        const odd = Buffer.alloc(32767);
        for (let i = 0; i < 600; i++) sendRaw(c, new Wire().byte(94).u32(id).str(odd).buf()); // ~19 MiB
        const sync = await globalRequest(c, 'x-sync'); // every packet before it was processed
        assert.equal(sync.ok, false);
        const s2 = sessions[1]!;
        assert.ok(s2.readableLength <= 4 * MiB, `server buffered ${(s2.readableLength / MiB).toFixed(2)} MiB from a window-ignoring client`);
        assert.ok((s2 as Any).incoming.window >= 0, 'the window never goes negative');
        c.end();
      },
    );
  });

  it('re-key under load: ssh -o RekeyLimit=1M moves 32 MiB each way, memory stays bounded', async () => {
    let sunk = -1;
    await withServer(
      {
        handler: async (s) => {
          if (s.rawCommand === 'sink') {
            let n = 0;
            for await (const chunk of s) n += (chunk as Buffer).length;
            sunk = n;
            s.write(`${n}\n`);
            return;
          }
          const chunk = Buffer.alloc(64 * 1024, 0x62);
          for (let w = 0; w < 32 * MiB && !s.signal.aborted; w += chunk.length) {
            if (!s.write(chunk)) await once(s, 'drain', { signal: s.signal }).catch(() => undefined);
          }
        },
      },
      async ({ port }) => {
        const base = settledMemory();
        let peak = 0;
        const sampler = setInterval(() => {
          const m = process.memoryUsage();
          peak = Math.max(peak, m.heapUsed + m.external);
        }, 10);
        try {
          const args = [...SSH_ARGS, '-v', '-o', 'RekeyLimit=1M', '-p', String(port), 'testuser@127.0.0.1'].join(' ');
          const up = await run('sh', ['-c', `head -c ${32 * MiB} /dev/zero | ssh ${args} sink`], { timeoutMs: 30_000 });
          assert.equal(up.code, 0, up.stderr.toString().slice(-2000));
          assert.equal(up.stdout.toString(), `${32 * MiB}\n`);
          assert.equal(sunk, 32 * MiB);
          const down = await run('sh', ['-c', `ssh ${args} source | wc -c`], { timeoutMs: 30_000 });
          assert.equal(down.code, 0, down.stderr.toString().slice(-2000));
          assert.equal(down.stdout.toString().trim(), String(32 * MiB));
          for (const r of [up, down]) {
            const rekeys = (r.stderr.toString().match(/SSH2_MSG_NEWKEYS sent/g) ?? []).length;
            assert.ok(rekeys >= 10, `${rekeys} key exchanges`);
          }
        } finally {
          clearInterval(sampler);
        }
        const growth = peak - base;
        assert.ok(growth < 48 * MiB, `peak memory grew by ${(growth / MiB).toFixed(1)} MiB while moving 64 MiB`);
      },
    );
  });
});
