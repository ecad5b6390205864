/**
 * A named subsystem: `ssh -s host echo` reaches the "echo" handler, which echoes lines in
 * upper case. Shell and exec are refused because there is no main handler.
 *
 *   npx tsx examples/subsystem.ts
 *   ssh -s -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1 echo
 */
import { Server } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

const server = new Server({
  addr,
  subsystemHandlers: {
    echo: async (s) => {
      for await (const chunk of s) s.write(chunk.toString('utf8').toUpperCase());
    },
  },
});
server.on('error', (err) => console.error('error:', err.message));
await server.listenAndServe();
console.log(`listening on ${server.address()!.address}:${server.address()!.port}: ssh -s -p ${server.address()!.port} you@127.0.0.1 echo`);
