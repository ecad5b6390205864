/**
 * Shows the pty a client asked for (term, size in cells and pixels, terminal modes) and
 * follows window resizes until the user presses q or Ctrl-C.
 *
 *   npx tsx examples/pty.ts
 *   ssh -t -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 */
import { listenAndServe } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';

const server = await listenAndServe(addr, async (s) => {
  if (!s.pty) {
    s.stderr.write('No pty requested: run ssh with -t\n');
    await s.exit(1);
    return;
  }
  const { term, modes } = s.pty;
  s.write(`term: ${term}\n`);
  s.write(`modes: ${Object.entries(modes).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
  s.write('resize your window; press q to quit\n');
  // The client's terminal is in raw mode, so keys arrive as bytes: q or Ctrl-C quits.
  const quit = new Promise<void>((resolve) =>
    s.on('data', (d: Buffer) => (d.includes(0x71) || d.includes(0x03)) && resolve()),
  );
  void (async () => {
    for await (const w of s.windowChanges()) {
      s.write(`window: ${w.width} cols x ${w.height} rows (${w.widthPixels}x${w.heightPixels} px)\n`);
    }
  })();
  await quit; // returning exits 0; windowChanges() ends when the session closes
});
server.on('error', (err) => console.error('error:', err.message));
console.log(`listening on ${server.address()!.address}:${server.address()!.port}: ssh -t -p ${server.address()!.port} you@127.0.0.1`);
