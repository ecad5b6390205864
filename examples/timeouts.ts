/**
 * Timeouts: a connection must authenticate within 30 s, is closed after 10 s without data
 * from the client, and after 60 s in any case. The handler sees why through ctx.signal.
 *
 *   npx tsx examples/timeouts.ts
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 */
import { listenAndServe, TimeoutError } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

const server = await listenAndServe(
  addr,
  async (s) => {
    s.write('Type something within 10 s, or be disconnected. You have 60 s in all.\n');
    const t0 = Date.now();
    s.context.signal.addEventListener('abort', () => {
      const reason = s.context.signal.reason;
      const why = reason instanceof TimeoutError ? `${reason.kind} timeout` : 'connection closed';
      console.log(`${s.user}: ${why} after ${Date.now() - t0} ms`);
    });
    for await (const chunk of s) s.write(`you typed ${chunk.length} bytes\n`);
  },
  { handshakeTimeout: 30_000, idleTimeout: 10_000, maxTimeout: 60_000 },
);
server.on('error', (err) => console.error('error:', err.message));
console.log(`listening on ${server.address()!.address}:${server.address()!.port}`);
