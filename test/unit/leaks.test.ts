/**
 * Leak check: 1 000 connect/exec/disconnect cycles (a fresh ssh2 client each time), then
 * `close()`. Open handles (`process.getActiveResourcesInfo()`), file descriptors and the heap
 * must come back to their baseline, and the server's own bookkeeping (connections, admission
 * counts) must be empty between cycles.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import ssh2 from 'ssh2';
import { Server } from '../../src/index.js';
import { delay, waitFor } from '../helpers/harness.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

const CYCLES = 1000;
const CONCURRENCY = 8;

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
const fds = (): number => readdirSync('/proc/self/fd').length;
async function heap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await delay(10);
  }
  return process.memoryUsage().heapUsed;
}

/** One cycle: a new client connects, runs an exec, reads its output and disconnects. */
async function cycle(port: number, i: number): Promise<void> {
  const client = new ssh2.Client();
  const ready = once(client, 'ready');
  client.connect({ host: '127.0.0.1', port, username: `u${i}`, readyTimeout: 10_000 });
  await ready;
  const out = await new Promise<string>((resolve, reject) => {
    client.exec(`echo ${i}`, (err, ch) => {
      if (err) return reject(err);
      let text = '';
      ch.on('data', (d: Buffer) => (text += d));
      ch.on('close', () => resolve(text));
    });
  });
  assert.equal(out, `u${i} echo ${i}\n`);
  const closed = once(client, 'close');
  client.end();
  await closed;
}

async function serve(): Promise<{ server: Server; port: number; errors: Error[] }> {
  const server = new Server({
    handler: async (s) => {
      s.write(`${s.user} ${s.rawCommand}\n`);
      await s.exit(0);
    },
  });
  const errors: Error[] = [];
  server.on('error', (err) => errors.push(err));
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port, errors };
}

async function cycles(port: number, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await cycle(port, next++);
    }),
  );
}

describe('leaks', () => {
  it(`${CYCLES} connect/exec/disconnect cycles, then close(): handles, fds and heap return to baseline`, async (t) => {
    // Warm up: lazy module state, crypto, the first server's one-time setup.
    {
      const { server, port } = await serve();
      await cycles(port, 50);
      await server.close();
    }
    await delay(50);
    const baseHandles = resources();
    const baseFds = fds();
    const baseHeap = await heap();

    const { server, port, errors } = await serve();
    const start = Date.now();
    await cycles(port, CYCLES);
    const ms = Date.now() - start;

    // Between cycles the server keeps nothing per connection.
    const s = server as Any;
    await waitFor(() => s.connections.size === 0, 2000, 'connections to be forgotten');
    const admission = s.admission;
    assert.equal(admission.total, 0, 'admission: no connection counted');
    assert.equal(admission.unauthenticated, 0, 'admission: no startup counted');
    assert.equal(admission.perSource.size, 0, 'admission: no per-source count left');
    assert.equal(admission.penalties.size, 0, 'authenticated connections earn no penalty');
    assert.deepEqual(errors, []);
    const open = resources();
    assert.equal(open.TCPServerWrap ?? 0, (baseHandles.TCPServerWrap ?? 0) + 1, 'only the listener is left');
    assert.ok((open.TCPSocketWrap ?? 0) <= (baseHandles.TCPSocketWrap ?? 0), `no sockets left: ${JSON.stringify(open)}`);

    await server.close();
    await delay(50);
    const afterHeap = await heap();
    const afterHandles = resources();
    const afterFds = fds();
    t.diagnostic(
      `${CYCLES} cycles in ${ms} ms; handles ${JSON.stringify(baseHandles)} → ${JSON.stringify(afterHandles)}; ` +
        `fds ${baseFds} → ${afterFds}; heap ${(baseHeap / MiB).toFixed(1)} → ${(afterHeap / MiB).toFixed(1)} MiB`,
    );
    assert.deepEqual(afterHandles, baseHandles, 'process.getActiveResourcesInfo() back to baseline');
    assert.ok(Math.abs(afterFds - baseFds) <= 2, `fds ${baseFds} → ${afterFds}`);
    assert.ok(afterHeap - baseHeap < 4 * MiB, `heap grew by ${((afterHeap - baseHeap) / MiB).toFixed(2)} MiB`);
  });
});
