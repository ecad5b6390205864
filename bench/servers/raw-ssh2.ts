/**
 * The baseline: an SSH server written directly on ssh2, as thin as possible, with TCP_NODELAY.
 * Same commands as the glidessh server (see ./common.ts); no authentication ('none' accepted).
 *
 *   node --expose-gc bench/.build/bench/servers/raw-ssh2.js --host-key <file>   (compiled as glidessh.ts says)
 *
 * prints `PORT <n>` once listening on 127.0.0.1.
 */
import { createServer } from 'node:net';
import ssh2 from 'ssh2';
import { announce, CHUNK, LINES, parseArgs, parseCommand, stats, watchdog } from './common.js';

type Channel = ssh2.ServerChannel;

const args = parseArgs(process.argv.slice(2));
const ssh = new ssh2.Server({ hostKeys: [args.hostKey] }, (client) => {
  client.on('error', () => undefined);
  client.on('authentication', (ctx) => ctx.accept());
  client.on('ready', () => {
    client.on('session', (accept) => {
      const session = accept();
      session.on('pty', (ok) => ok?.());
      session.on('exec', (ok, _reject, info) => {
        const channel = ok();
        if (!channel) return;
        channel.on('error', () => undefined);
        channel.stderr.on('error', () => undefined);
        run(channel, info.command);
      });
    });
  });
});
ssh.on('error', () => undefined);

const net = createServer((socket) => {
  socket.setNoDelay(true);
  ssh.injectSocket(socket);
});
net.listen(0, '127.0.0.1', () => {
  const addr = net.address();
  if (addr && typeof addr === 'object') announce(addr.port);
});
watchdog(args.maxMs, () => net.close());

/** exit-status once everything written before was handed to ssh2, then EOF and close. */
function exit(channel: Channel, code: number): void {
  channel.write(Buffer.alloc(0), () => {
    channel.exit(code);
    channel.end();
  });
}

function run(channel: Channel, text: string): void {
  const cmd = parseCommand(text);
  switch (cmd.name) {
    case 'sink': {
      let n = 0;
      channel.on('data', (d: Buffer) => (n += d.length));
      channel.once('end', () => {
        channel.write(`${n}\n`);
        exit(channel, 0);
      });
      return;
    }
    case 'source':
      return source(channel, cmd.bytes);
    case 'echo':
      channel.on('data', (d: Buffer) => channel.write(d));
      channel.once('end', () => exit(channel, 0));
      return;
    case 'idle':
      return;
    case 'stats':
      channel.write(stats(cmd.gc));
      return exit(channel, 0);
    case 'true':
      return exit(channel, 0);
    default:
      channel.stderr.write(`unknown command: ${cmd.text}\n`);
      return exit(channel, 127);
  }
}

function source(channel: Channel, bytes: number): void {
  let left = bytes;
  let closed = false;
  channel.once('close', () => (closed = true));
  const pump = (): void => {
    while (left > 0 && !closed) {
      const len = Math.min(left, CHUNK);
      left -= len;
      if (!channel.write(len === CHUNK ? LINES : LINES.subarray(0, len))) {
        if (left > 0) channel.once('drain', pump);
        break;
      }
    }
    if (left === 0 && !closed) exit(channel, 0);
  };
  pump();
}
