/**
 * An SFTP and SCP server for one directory: `sftp`, `scp` (both protocols), PuTTY `psftp`
 * and `pscp`, WinSCP and FileZilla work against it. Clients see ROOT as `/` and cannot leave
 * it. Anyone may log in (no auth handler): set READ_ONLY=1 to serve downloads only.
 *
 *   ROOT=/srv/files npx tsx examples/sftp.ts          (default: a new temporary directory)
 *   sftp -P 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null you@127.0.0.1
 *   scp -O -P 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null file you@127.0.0.1:
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scpHandler, Server, sftpHandler, type FileServerOptions } from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';
let root = process.env.ROOT;
if (!root) {
  root = mkdtempSync(join(tmpdir(), 'glidessh-sftp-example-'));
  writeFileSync(join(root, 'README.txt'), 'Served by glidessh examples/sftp.ts\n');
}

const files: FileServerOptions = {
  root,
  readOnly: process.env.READ_ONLY === '1',
  umask: 0o022,
  // Log every change a client makes (the callback may also say no: return false).
  operationCallback: (session, op) => {
    if (op.type !== 'stat' && op.type !== 'lstat' && op.type !== 'realpath') console.log(`${session.user}: ${JSON.stringify(op)}`);
    return true;
  },
};

const server = new Server({
  addr,
  handler: scpHandler(files), // legacy `scp -O` runs "scp -t/-f" as an exec command
  subsystemHandlers: { sftp: sftpHandler(files) }, // sftp, modern scp, psftp, pscp
});
server.on('error', (err) => console.error('error:', err.message));
await server.listenAndServe();
const { address, port } = server.address()!;
console.log(`listening on ${address}:${port}, serving ${root}: sftp -P ${port} you@${address}`);
