/**
 * Slow-loris: 200 sockets from 127.0.0.3 that send only an identification line, while a
 * normal client from 127.0.0.2 keeps logging in. With `perSourceMaxStartups` below MaxStartups'
 * `start` the flood cannot reach the random early drop, every flood socket ends (refused at once
 * or cut at the handshake timeout) and every normal login succeeds. With the defaults the flood
 * does reach it — as with OpenSSH's defaults — and the test pins down what that costs.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { ConnectionRefusedError, type ServerOptions } from '../../src/index.js';
import { connect, delay, exec, startServer, waitFor } from '../helpers/harness.js';

interface FloodSocket {
  sock: net.Socket;
  /** Bytes the server sent (its identification and KEXINIT when admitted; nothing when refused). */
  bytes: () => number;
  isClosed: () => boolean;
  closed: Promise<{ ms: number; bytes: number }>;
}

/** A socket from `localAddress` that sends only `SSH-2.0-x\r\n` and then nothing. */
function slowSocket(port: number, localAddress: string): FloodSocket {
  const start = Date.now();
  const sock = net.connect({ port, host: '127.0.0.1', localAddress });
  let bytes = 0;
  sock.on('error', () => undefined);
  sock.on('data', (d: Buffer) => (bytes += d.length));
  sock.once('connect', () => sock.write('SSH-2.0-x\r\n'));
  let isClosed = false;
  const closed = once(sock, 'close').then(() => ((isClosed = true), { ms: Date.now() - start, bytes }));
  return { sock, bytes: () => bytes, isClosed: () => isClosed, closed };
}

/** One login from `localAddress` with an exec; resolves with its time, or the error that ended it. */
async function login(port: number, localAddress: string): Promise<{ ok: boolean; ms: number; error?: string }> {
  const start = Date.now();
  const c = await connect(port, { localAddress, readyTimeout: 5000 }).catch((err: Error) => err);
  if (c instanceof Error) return { ok: false, ms: Date.now() - start, error: c.message };
  const r = await exec(c, 'x');
  const closed = once(c, 'close');
  c.end();
  await closed;
  return { ok: r.stdout.toString() === 'ok' && r.code === 0, ms: Date.now() - start };
}

describe('slow-loris', () => {
  it('200 ident-only sockets from one source all end (refused or cut at handshakeTimeout) while ≥ 20 logins from another succeed', async (t) => {
    const HANDSHAKE = 1000;
    const reasons = new Map<string, number>();
    const options: ServerOptions = {
      handshakeTimeout: HANDSHAKE,
      perSourceMaxStartups: 4, // below MaxStartups' start (10): the flood never triggers random early drop
      handler: (s) => void s.write('ok'),
      connectionFailedCallback: (_s, err) => {
        if (err instanceof ConnectionRefusedError) reasons.set(err.reason, (reasons.get(err.reason) ?? 0) + 1);
      },
    };
    const ts = await startServer(options);
    const flood: FloodSocket[] = [];
    try {
      const start = Date.now();
      let floodDone = false;
      // 20 waves of 10 sockets, 100 ms apart: the flood outlasts the handshake timeout.
      const opening = (async () => {
        for (let wave = 0; wave < 20; wave++) {
          for (let i = 0; i < 10; i++) flood.push(slowSocket(ts.port, '127.0.0.3'));
          await delay(100);
        }
      })();
      const ended = opening.then(() => Promise.all(flood.map((f) => f.closed))).finally(() => (floodDone = true));
      const logins: Array<{ ok: boolean; ms: number; error?: string }> = [];
      while (!floodDone || logins.length < 20) {
        logins.push(await login(ts.port, '127.0.0.2'));
        if (Date.now() - start > 15_000) break;
      }
      const results = await ended;
      const totalMs = Date.now() - start;

      assert.equal(results.length, 200);
      const refused = results.filter((r) => r.bytes === 0);
      const cut = results.filter((r) => r.bytes > 0);
      assert.equal(refused.length + cut.length, 200);
      assert.ok(cut.length >= 4, `${cut.length} admitted and cut`);
      for (const r of refused) assert.ok(r.ms < 1000, `a refused socket closed after ${r.ms} ms`);
      for (const r of cut) assert.ok(r.ms >= HANDSHAKE - 50 && r.ms < HANDSHAKE + 1500, `an admitted socket was cut after ${r.ms} ms`);
      assert.ok(totalMs < 2000 + HANDSHAKE + 1500, `the whole flood ended within ${totalMs} ms`);
      assert.ok((reasons.get('per-source-max-startups') ?? 0) > 0, 'refused by the per-source cap');
      assert.ok((reasons.get('penalty') ?? 0) > 0, 'and, after two handshake timeouts, by the penalty box');

      assert.ok(logins.length >= 20, `${logins.length} logins`);
      const failed = logins.filter((l) => !l.ok);
      assert.deepEqual(failed, [], 'every normal login during the flood succeeded');
      const slowest = Math.max(...logins.map((l) => l.ms));
      t.diagnostic(
        `flood: ${refused.length} refused at once, ${cut.length} cut at ${HANDSHAKE} ms; refusals ${JSON.stringify(Object.fromEntries(reasons))}; ` +
          `${logins.length} logins from 127.0.0.2 all ok, slowest ${slowest} ms; flood over in ${totalMs} ms`,
      );
    } finally {
      for (const f of flood) f.sock.destroy();
      await ts.close();
    }
  });

  it('with the default options the flood reaches MaxStartups 10:30:100 and other sources are dropped at random (as with OpenSSH), never hung', async (t) => {
    const reasons: string[] = [];
    const ts = await startServer({
      handler: (s) => void s.write('ok'),
      connectionFailedCallback: (_s, err) => {
        if (err instanceof ConnectionRefusedError) reasons.push(err.reason);
      },
    });
    const flood: FloodSocket[] = [];
    try {
      for (let i = 0; i < 200; i++) flood.push(slowSocket(ts.port, '127.0.0.3'));
      // Each socket is either admitted (the server sent its identification) or refused (closed).
      await waitFor(() => flood.every((f) => f.bytes() > 0 || f.isClosed()), 5000, 'the flood to settle');
      const admitted = flood.filter((f) => !f.isClosed()).length;
      // The default handshake timeout (120 s) holds them; random early drop caps how many.
      assert.ok(admitted >= 10 && admitted < 100, `${admitted} flood sockets admitted`);

      const logins: Array<{ ok: boolean; ms: number; error?: string }> = [];
      for (let i = 0; i < 20; i++) logins.push(await login(ts.port, '127.0.0.2'));
      const dropped = logins.filter((l) => !l.ok);
      assert.ok(dropped.length >= 1, 'some logins from another source are dropped at random');
      for (const l of dropped) {
        assert.match(l.error ?? '', /before handshake/, 'a dropped login sees a clean close');
        assert.ok(l.ms < 1000, `a dropped login ended after ${l.ms} ms`);
      }
      assert.ok(reasons.filter((r) => r === 'max-startups').length >= dropped.length);

      // Once the flood goes away its source sits in the penalty box (noAuth, 1 s per connection).
      for (const f of flood) f.sock.destroy();
      await Promise.all(flood.map((f) => f.closed));
      await delay(50);
      const after = await login(ts.port, '127.0.0.2');
      assert.ok(after.ok, 'logins work again once the flood is gone');
      const boxed = slowSocket(ts.port, '127.0.0.3');
      assert.equal((await boxed.closed).bytes, 0);
      assert.equal(reasons.at(-1), 'penalty');
      t.diagnostic(
        `defaults: ${admitted}/200 flood sockets admitted (held for the 120 s handshake timeout); ` +
          `${dropped.length}/20 logins from another source dropped (max-startups); afterwards 127.0.0.3 is boxed`,
      );
    } finally {
      for (const f of flood) f.sock.destroy();
      await ts.close();
    }
  });
});
