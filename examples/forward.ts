/**
 * Port forwarding both ways, to loopback only: `ssh -L` may reach 127.0.0.1/::1/localhost
 * ports on the server, `ssh -R` may listen there (port 0 picks a free one).
 *
 *   npx tsx examples/forward.ts
 *   ssh -N -p 2222 -L 8080:127.0.0.1:80 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 *   ssh -N -p 2222 -R 0:127.0.0.1:3000 ...     (prints "Allocated port N for remote forward")
 *
 * A session without -N prints what the server allows and waits for Ctrl-D.
 */
import { defaultSessionHandler, directTcpipHandler, ForwardedTcpHandler, Server } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';
const loopback = (host: string): boolean => host === 'localhost' || host === '127.0.0.1' || host === '::1';

const forwards = new ForwardedTcpHandler();
const server = new Server({
  addr,
  channelHandlers: { session: defaultSessionHandler, 'direct-tcpip': directTcpipHandler },
  requestHandlers: { 'tcpip-forward': forwards.handleRequest, 'cancel-tcpip-forward': forwards.handleRequest },
  localPortForwardingCallback: (ctx, host, port, origin) => {
    const ok = loopback(host);
    console.log(`${ctx.user}: -L to ${host}:${port} from ${origin.originatorAddress}:${origin.originatorPort}: ${ok ? 'allowed' : 'denied'}`);
    return ok;
  },
  reversePortForwardingCallback: (ctx, host, port) => {
    const ok = loopback(host);
    console.log(`${ctx.user}: -R on ${host}:${port}: ${ok ? 'allowed' : 'denied'}`);
    return ok;
  },
  handler: async (s) => {
    s.write('Forwarding is allowed to and from loopback addresses only. Ctrl-D to quit.\n');
    for await (const chunk of s) void chunk;
  },
});
server.on('error', (err) => console.error('error:', err.message));
await server.listenAndServe();
const { address, port } = server.address()!;
console.log(`glidessh forward server: listening on ${address}:${port}`);
console.log(`try: ssh -N -p ${port} -L 8080:127.0.0.1:80 -R 0:127.0.0.1:3000 you@${address}`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void server.close().then(() => process.exit(0)));
}
