/**
 * Public-key login against an authorized_keys file. glidessh verifies the client's signature
 * itself; the handler only decides whether the key is allowed.
 *
 *   AUTHORIZED_KEYS=~/.ssh/id_ed25519.pub npx tsx examples/publickey.ts
 *   ssh -p 2222 -i ~/.ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { keysEqual, listenAndServe, parseAuthorizedKeys } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';
const file = process.env.AUTHORIZED_KEYS ?? `${homedir()}/.ssh/authorized_keys`;
const allowed = parseAuthorizedKeys(readFileSync(file, 'utf8')).map((entry) => entry.key);
console.log(`${allowed.length} key(s) allowed from ${file}`);

const server = await listenAndServe(
  addr,
  async (s) => {
    s.write(`Hello ${s.user}, you logged in with ${s.publicKey?.type} ${s.publicKey?.fingerprint()}\n`);
  },
  { publicKeyHandler: (_ctx, key) => allowed.some((k) => keysEqual(k, key)) },
);
server.on('error', (err) => console.error('error:', err.message));
console.log(`listening on ${server.address()!.address}:${server.address()!.port}`);
