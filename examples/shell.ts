/**
 * A real login shell per user, in a real pseudo-terminal (node-pty): job control, ^C, vim,
 * htop and resizes work as with sshd, and `ssh host; echo $?` shows the shell's exit status.
 *
 * It runs the shell as the account the server runs under, so it only admits the keys in
 * AUTHORIZED_KEYS (or, without it, the password it prints at start) and listens on loopback.
 *
 *   npm install node-pty     # an optional peer dependency of glidessh
 *   AUTHORIZED_KEYS=~/.ssh/id_ed25519.pub npx tsx examples/shell.ts
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null localhost
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Server, activeTerm, keysEqual, logging, parseAuthorizedKeys, ptyHandler, type ServerOptions } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';
const shell = process.env.LOGIN_SHELL ?? userInfo().shell ?? '/bin/sh';

const auth: ServerOptions = {};
if (process.env.AUTHORIZED_KEYS) {
  const allowed = parseAuthorizedKeys(readFileSync(process.env.AUTHORIZED_KEYS, 'utf8')).map((e) => e.key);
  auth.publicKeyHandler = (_ctx, key) => allowed.some((k) => keysEqual(k, key));
  console.log(`${allowed.length} key(s) allowed from ${process.env.AUTHORIZED_KEYS}`);
} else {
  const password = Buffer.from(randomBytes(9).toString('base64url'));
  auth.passwordHandler = (_ctx, given) => {
    const g = Buffer.from(given);
    return g.length === password.length && timingSafeEqual(g, password);
  };
  console.log(`password: ${password}`);
}

const server = new Server({ addr, ...auth });
server.use(logging(), activeTerm());
// `ssh -t host cmd` runs cmd through the shell; plain `ssh host` gets a login shell.
server.handle(ptyHandler(shell, (s) => (s.rawCommand ? ['-c', s.rawCommand] : ['-l'])));
server.on('error', (err) => console.error('error:', err.message));
const { address, port } = await server.listenAndServe();
console.log(`listening on ${address}:${port}: ssh -p ${port} localhost (runs ${shell})`);
