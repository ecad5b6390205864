/**
 * Agent forwarding: with `ssh -A`, the session lists the keys of the client's agent by running
 * `ssh-add -l` on the server through the forwarded agent.
 *
 *   npx tsx examples/agent.ts
 *   ssh -A -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { agentRequested, forwardAgentConnections, listenAndServe, newAgentListener } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

const server = await listenAndServe(addr, async (s) => {
  if (!agentRequested(s)) {
    s.stderr.write('No agent was forwarded: connect with ssh -A.\n');
    await s.exit(1);
    return;
  }
  const agent = await newAgentListener(); // a 0700 temporary directory, removed on close()
  try {
    void forwardAgentConnections(agent, s); // one auth-agent@openssh.com channel per connection
    s.write(`Keys in your agent (via ${agent.path}):\n`);
    const child = spawn('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.path }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(s, { end: false });
    child.stderr.pipe(s.stderr, { end: false });
    const [code] = (await once(child, 'close')) as [number | null];
    await s.exit(code ?? 1);
  } finally {
    await agent.close();
  }
});
server.on('error', (err) => console.error('error:', err.message));
const { address, port } = server.address()!;
console.log(`glidessh agent server: listening on ${address}:${port}`);
console.log(`try: ssh -A -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@${address}`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void server.close().then(() => process.exit(0)));
}
