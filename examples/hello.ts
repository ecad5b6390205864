/**
 * The smallest glidessh server: greets the user and exits.
 *
 *   npm start            (or: npx tsx examples/hello.ts)
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 *
 * ADDR sets the address (default 127.0.0.1:2222). No auth handler is set, so any user gets
 * in; a host key is generated at start.
 */
import { listenAndServe } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

const server = await listenAndServe(addr, async (s) => {
  s.write(`Hello ${s.user}!\n`);
  if (s.rawCommand) s.write(`You ran: ${JSON.stringify(s.command)}\n`);
  if (s.pty) s.write(`Your terminal: ${s.pty.term}, ${s.pty.window.width}x${s.pty.window.height}\n`);
  await s.exit(0);
});
server.on('error', (err) => console.error('error:', err.message));

const { address, port } = server.address()!;
console.log(`glidessh hello server: listening on ${address}:${port}`);
console.log(`try: ssh -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ${process.env.USER ?? 'you'}@${address}`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log('shutting down');
    void server.close().then(() => process.exit(0));
  });
}
