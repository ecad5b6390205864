/**
 * Use every core: N worker processes (node:cluster) share one port and one host key, so
 * clients see the same server whichever worker accepts them.
 *
 *   npx tsx examples/cluster.ts            (WORKERS=2 to choose the count; default: one per core)
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { generateHostKey, listenAndServe } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

if (cluster.isPrimary) {
  // One key for all workers: generated once here, handed to each worker.
  const hostKey = process.env.HOST_KEY ?? generateHostKey().text;
  const workers = Number(process.env.WORKERS ?? availableParallelism());
  let listening = 0;
  for (let i = 0; i < workers; i++) cluster.fork({ HOST_KEY: hostKey });
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) console.log(`${workers} workers: listening on ${address.address}:${address.port}`);
  });
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      process.exit(0);
    });
  }
} else {
  const server = await listenAndServe(
    addr,
    async (s) => {
      s.write(`Hello ${s.user} from worker ${process.pid}\n`);
    },
    { hostKeys: [process.env.HOST_KEY!] },
  );
  server.on('error', (err) => console.error('error:', err.message));
  process.once('disconnect', () => void server.close());
}
