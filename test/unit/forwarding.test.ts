/**
 * TCP forwarding driven by an ssh2 client: gliderlabs' TestLocalPortForwardingWorks /
 * RespectsCallback, half-close both ways, dial errors and cancellation, and ForwardedTCPHandler
 * behaviours (port 0, several forwards, cancel by bound port, limits, cleanup on disconnect
 * and on server.close()). Each data test moves 4 MiB each way and checks both checksums.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { connect, startServer, waitFor } from '../helpers/harness.js';
import { globalRequest, Wire } from '../helpers/raw.js';
import {
  assertSessionWorks,
  exchange,
  failure,
  forwardingOptions,
  halfCloseTarget,
  MiB,
  portFree,
  sendAfterEnd,
  setup,
  sha256,
  target,
} from '../helpers/forwarding.js';
import { ChannelRejectReason, type Context, type ForwardOrigin } from '../../src/index.js';

const T = { timeout: 15_000 };
const SIZE = 4 * MiB;

/** Opens a direct-tcpip channel as from 10.1.2.3:4567. */
const forwardOut = (client: ssh2.Client, host: string, port: number): Promise<ssh2.ClientChannel> =>
  new Promise((resolve, reject) =>
    client.forwardOut('10.1.2.3', 4567, host, port, (err, ch) => (err ? reject(err) : resolve(ch))),
  );

describe('direct-tcpip (ssh -L)', () => {
  it('TestLocalPortForwardingWorks: the callback sees host, port and originator; data reads through to EOF', T, async (t) => {
    const hello = createServer((s) => s.end('Hello world'));
    hello.listen(0, '127.0.0.1');
    await once(hello, 'listening');
    t.after(() => hello.close());
    const port = (hello.address() as { port: number }).port;
    const calls: unknown[] = [];
    const { client } = await setup(
      t,
      forwardingOptions({
        localPortForwardingCallback: (ctx: Context, host: string, p: number, origin: ForwardOrigin) => {
          calls.push([ctx.user, host, p, origin]);
          return true;
        },
      }),
    );
    const ch = await forwardOut(client, '127.0.0.1', port);
    const chunks: Buffer[] = [];
    for await (const c of ch) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'Hello world');
    assert.deepEqual(calls, [['testuser', '127.0.0.1', port, { originatorAddress: '10.1.2.3', originatorPort: 4567 }]]);
  });

  it('TestLocalPortForwardingRespectsCallback: false, unset, or throwing is "administratively prohibited: port forwarding is disabled"', T, async (t) => {
    const tg = await target(t, 10);
    const throwing = (): Promise<boolean> => Promise.reject(new Error('policy down'));
    for (const cb of [() => false, undefined, throwing]) {
      const { srv, client } = await setup(t, forwardingOptions({ localPortForwardingCallback: cb }));
      const err = await failure(forwardOut(client, '127.0.0.1', tg.port));
      assert.match(err.message, /port forwarding is disabled/);
      assert.equal(err.reason, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED);
      await assertSessionWorks(client);
      const errors = srv.errors as Array<Error & { hook?: string }>;
      assert.deepEqual(errors.map((e) => e.hook), cb === throwing ? ['localPortForwardingCallback'] : []);
    }
    assert.equal(tg.accepted, 0, 'nothing was dialled');
  });

  it('is refused "unsupported channel type" when the handler is not registered, even with the callback', T, async (t) => {
    const { client } = await setup(t, { localPortForwardingCallback: () => true, handler: async (s) => void s.write('ok\n') });
    const err = await failure(forwardOut(client, '127.0.0.1', 9));
    assert.equal(err.reason, ChannelRejectReason.UNKNOWN_CHANNEL_TYPE);
    await assertSessionWorks(client);
  });

  it('a dial error is "connect failed" with the reason, and the connection goes on', T, async (t) => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { client } = await setup(t, forwardingOptions({ localPortForwardingCallback: () => true }));
    const err = await failure(forwardOut(client, '127.0.0.1', port));
    assert.equal(err.reason, ChannelRejectReason.CONNECT_FAILED);
    assert.match(err.message, new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    await assertSessionWorks(client);
  });

  it('moves 4 MiB each way with half-close: the answer sent after the client EOF arrives intact', T, async (t) => {
    const tg = await target(t, SIZE);
    const { client } = await setup(t, forwardingOptions({ localPortForwardingCallback: () => true }));
    const sent = randomBytes(SIZE);
    const [a, b] = await Promise.all([forwardOut(client, '127.0.0.1', tg.port), forwardOut(client, '127.0.0.1', tg.port)]);
    const results = await Promise.all([exchange(a, sent), exchange(b, sent)]);
    for (const r of results) assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [
      { received: sha256(sent), bytes: SIZE },
      { received: sha256(sent), bytes: SIZE },
    ]);
  });

  it('half-close the other way: after the target ended its side, the client still sends 4 MiB to it', T, async (t) => {
    const tg = await halfCloseTarget(64, undefined, true);
    t.after(() => tg.close());
    const { client } = await setup(t, forwardingOptions({ localPortForwardingCallback: () => true }));
    const sent = randomBytes(SIZE);
    const r = await sendAfterEnd(await forwardOut(client, '127.0.0.1', tg.port), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: 64 });
    await waitFor(() => tg.records.length === 1, 5000, 'the EOF at the target');
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
  });

  it('a connection dropped mid-transfer closes the target socket without an error or a throw', T, async (t) => {
    let targetClosed = false;
    const flood = createServer((s) => {
      s.on('error', () => undefined);
      s.on('close', () => (targetClosed = true));
      const chunk = randomBytes(64 * 1024);
      const pump = (): void => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    });
    flood.listen(0, '127.0.0.1');
    await once(flood, 'listening');
    t.after(() => flood.close());
    const { srv, client } = await setup(t, forwardingOptions({ localPortForwardingCallback: () => true }));
    const ch = await forwardOut(client, '127.0.0.1', (flood.address() as { port: number }).port);
    ch.on('error', () => undefined);
    let got = 0;
    await new Promise<void>((resolve) =>
      ch.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 3 * MiB) resolve();
      }),
    );
    client.destroy();
    await waitFor(() => targetClosed, 5000, 'the target socket to close');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(srv.errors, []);
  });

  it('dialling is cancelled by ctx.signal: a connection closed during the callback dials nothing', T, async (t) => {
    const tg = await target(t, 10);
    let client!: ssh2.Client;
    let answered = false;
    ({ client } = await setup(
      t,
      forwardingOptions({
        localPortForwardingCallback: async (ctx) => {
          client.end();
          await once(ctx.signal, 'abort');
          answered = true;
          return true;
        },
      }),
    ));
    forwardOut(client, '127.0.0.1', tg.port).catch(() => undefined);
    await waitFor(() => answered, 5000, 'the callback');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(tg.accepted, 0);
  });
});

describe('ForwardedTcpHandler (ssh -R)', () => {
  const forwardIn = (client: ssh2.Client, host: string, port: number): Promise<number> =>
    new Promise((resolve, reject) => client.forwardIn(host, port, (err, p) => (err ? reject(err) : resolve(p))));
  const unforwardIn = (client: ssh2.Client, host: string, port: number): Promise<void> =>
    new Promise((resolve, reject) => client.unforwardIn(host, port, (err) => (err ? reject(err) : resolve())));

  /** Serves forwarded-tcpip channels: each is piped to the target whose port matches `route`. */
  function serveForwards(client: ssh2.Client, route: (destPort: number) => number, seen: ssh2.TcpConnectionDetails[]): void {
    client.on('tcp connection', (info, accept) => {
      seen.push(info);
      const ch = accept();
      const sock = createConnection({ port: route(info.destPort), host: '127.0.0.1', allowHalfOpen: true });
      ch.pipe(sock).pipe(ch);
    });
  }

  it('port 0 binds an ephemeral port, replies with it, and forwards 4 MiB each way with half-close', T, async (t) => {
    const tg = await target(t, SIZE);
    const calls: unknown[] = [];
    const { client } = await setup(
      t,
      forwardingOptions({
        reversePortForwardingCallback: (_ctx, host, port) => {
          calls.push([host, port]);
          return true;
        },
      }),
    );
    const seen: ssh2.TcpConnectionDetails[] = [];
    serveForwards(client, () => tg.port, seen);
    const port = await forwardIn(client, '127.0.0.1', 0);
    assert.ok(port > 0);
    assert.deepEqual(calls, [['127.0.0.1', 0]], 'the callback sees the requested port');
    const sent = randomBytes(SIZE);
    const r = await exchange(createConnection({ port, host: '127.0.0.1', allowHalfOpen: true }), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    assert.equal(seen[0]!.destIP, '127.0.0.1');
    assert.equal(seen[0]!.destPort, port);
    assert.equal(seen[0]!.srcIP, '127.0.0.1');
  });

  it('several port-0 forwards on one connection each work, and each cancels on its own', T, async (t) => {
    const targets = await Promise.all([target(t, 100), target(t, 200), target(t, 300)]);
    const { client } = await setup(t, forwardingOptions({ reversePortForwardingCallback: () => true }));
    const ports = [
      await forwardIn(client, '127.0.0.1', 0),
      await forwardIn(client, '127.0.0.1', 0),
      await forwardIn(client, '127.0.0.1', 0),
    ];
    assert.equal(new Set(ports).size, 3);
    serveForwards(client, (p) => targets[ports.indexOf(p)]!.port, []);
    const via = (p: number) => exchange(createConnection({ port: p, host: '127.0.0.1', allowHalfOpen: true }), Buffer.from('x'));
    for (const [i, p] of ports.entries()) assert.equal((await via(p)).bytes, (i + 1) * 100);
    await unforwardIn(client, '127.0.0.1', ports[1]!);
    assert.ok(await portFree(ports[1]!), 'the cancelled forward released its port');
    assert.equal((await via(ports[0]!)).bytes, 100);
    assert.equal((await via(ports[2]!)).bytes, 300);
    await assert.rejects(unforwardIn(client, '127.0.0.1', ports[1]!), 'a second cancel is answered false');
    await assert.rejects(unforwardIn(client, '127.0.0.2', ports[0]!), 'a cancel must name the bind address');
    await unforwardIn(client, '127.0.0.1', ports[0]!);
    await unforwardIn(client, '127.0.0.1', ports[2]!);
    assert.ok((await portFree(ports[0]!)) && (await portFree(ports[2]!)));
  });

  it('is answered false when unset, denied, or the port is in use; the connection goes on', T, async (t) => {
    const busy = createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    t.after(() => busy.close());
    const busyPort = (busy.address() as { port: number }).port;
    for (const cb of [undefined, () => false, () => true]) {
      const { client } = await setup(t, forwardingOptions({ reversePortForwardingCallback: cb }));
      await assert.rejects(forwardIn(client, '127.0.0.1', cb ? busyPort : 0));
      await assertSessionWorks(client);
    }
    const { client } = await setup(t, { reversePortForwardingCallback: () => true, handler: async (s) => void s.write('ok\n') });
    await assert.rejects(forwardIn(client, '127.0.0.1', 0), 'not registered: false');
  });

  it('a malformed request is answered false; at most 64 listeners per connection', T, async (t) => {
    const { client } = await setup(t, forwardingOptions({ reversePortForwardingCallback: () => true }));
    assert.deepEqual(await globalRequest(client, 'tcpip-forward', Buffer.from([0, 0, 0])), { ok: false });
    assert.deepEqual(await globalRequest(client, 'tcpip-forward', new Wire().str('127.0.0.1').u32(70000).buf()), { ok: false });
    const answers = [];
    for (let i = 0; i < 65; i++) answers.push(await globalRequest(client, 'tcpip-forward', new Wire().str('127.0.0.1').u32(0).buf()));
    assert.equal(answers.filter((a) => a.ok).length, 64);
    assert.equal(answers[0]!.data?.length, 4, 'port 0 is answered with the bound port');
    await assertSessionWorks(client);
  });

  it('every listener closes when the connection ends, and on server.close()', T, async (t) => {
    const { srv, client } = await setup(t, forwardingOptions({ reversePortForwardingCallback: () => true }));
    const a = await forwardIn(client, '127.0.0.1', 0);
    const b = await forwardIn(client, 'localhost', 0);
    assert.equal(await portFree(a), false);
    client.end();
    await once(client, 'close');
    for (let i = 0; i < 100 && !((await portFree(a)) && (await portFree(b))); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok((await portFree(a)) && (await portFree(b)), 'both ports are free after the client left');
    assert.equal(srv.errors.length, 0);

    const other = await startServer(forwardingOptions({ reversePortForwardingCallback: () => true }));
    const c2 = await connect(other.port);
    c2.on('error', () => undefined);
    const p = await forwardIn(c2, '127.0.0.1', 0);
    await other.close();
    assert.ok(await portFree(p), 'server.close() released the port');
  });
});
