/**
 * Connection rate of examples/cluster.ts with 1 and with 2 workers (node:cluster sharing one
 * port and one host key): C concurrent ssh2 clients each doing connect + exec + close in a
 * loop for a fixed time. Loopback only; bounded in time; stops what it started.
 *
 *   npm run bench:cluster               (10 s per worker count)
 *   npm run bench:cluster -- --quick    (3 s per worker count)
 */
import { connectExecTrue } from './lib/client.js';
import { cleanup, installSignalHandlers, spawnTracked, waitForLine } from './lib/procs.js';
import { nowMs, percentile } from './lib/util.js';

const quick = process.argv.includes('--quick');
const seconds = quick ? 3 : 10;
// Below MaxStartups (10 unauthenticated connections), so the default limit refuses none.
const concurrency = 8;

async function measure(workers: number): Promise<{ workers: number; conns: number; rate: number; p50: number; p99: number; failures: number }> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', 'examples/cluster.ts'], {
    env: { ...process.env, ADDR: '127.0.0.1:0', WORKERS: String(workers) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = await waitForLine(child, /listening on [\d.]+:(\d+)/, 20_000, `cluster(${workers})`);
  const ep = { port: Number(m[1]), user: 'bench' };
  const times: number[] = [];
  let failures = 0;
  const end = nowMs() + seconds * 1000;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (nowMs() < end) {
        try {
          times.push(await connectExecTrue(ep, 10_000));
        } catch {
          failures++;
          if (failures > 1000) return;
        }
      }
    }),
  );
  const elapsed = (nowMs() - t0) / 1000;
  child.kill('SIGTERM');
  return { workers, conns: times.length, rate: times.length / elapsed, p50: percentile(times, 50), p99: percentile(times, 99), failures };
}

installSignalHandlers();
try {
  const rows = [await measure(1), await measure(2)];
  console.log(`\n## glidessh cluster: connect+exec rate (${concurrency} concurrent clients, ${seconds} s each)\n`);
  console.log('| workers | connections | per second | p50 ms | p99 ms | failures |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.workers} | ${r.conns} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.failures} |`);
  }
  console.log(`\n2 workers / 1 worker: ${(rows[1]!.rate / rows[0]!.rate).toFixed(2)}x (the clients share the same ${'2'} cores)`);
} finally {
  await cleanup();
}
