/**
 * The glidessh server for bench/stress.ts: password auth (user "good", password "good"), the
 * hardening options an internet-facing server would set, and counters of what happened.
 *
 *   node --import tsx bench/servers/stress-server.ts --host-key <file> [--max-ms N] [--max-startups S]
 *
 * prints `PORT <n>` once listening on 127.0.0.1. Commands:
 *   work        write 1 KiB and exit 0
 *   source N    write N bytes in 64 KiB chunks, honouring backpressure, exit 0
 *   idle        stay open until the client closes the channel
 *   stats       print the counters and memory as JSON, exit 0
 */
import { ConnectionRefusedError, Server, TimeoutError, type Session } from '../../src/index.js';
import { announce, parseArgs, watchdog } from './common.js';

const args = parseArgs(process.argv.slice(2));
const i = process.argv.indexOf('--max-startups');
const maxStartups = i === -1 ? undefined : process.argv[i + 1];

const counters = {
  admitted: 0,
  authenticated: 0,
  refused: {} as Record<string, number>,
  failedBeforeAuth: {} as Record<string, number>,
  closedBy: {} as Record<string, number>,
  sessions: 0,
  errors: {} as Record<string, number>,
};
const bump = (m: Record<string, number>, k: string): void => void (m[k] = (m[k] ?? 0) + 1);

const OPTIONS = {
  handshakeTimeout: 5_000,
  perSourceMaxStartups: 2,
  keepaliveInterval: 1_000,
  keepaliveCountMax: 2,
  hookTimeout: 2_000,
  ...(maxStartups ? { maxStartups } : {}),
};

const server = new Server({
  hostKeys: [args.hostKey],
  ...OPTIONS,
  passwordHandler: (ctx, pw) => ctx.user === 'good' && pw === 'good',
  connectionFailedCallback: (_s, err) => {
    if (err instanceof ConnectionRefusedError) bump(counters.refused, err.reason);
    else bump(counters.failedBeforeAuth, err instanceof TimeoutError ? `timeout:${err.kind}` : ((err as { code?: string }).code ?? err.message));
  },
  connectionCloseCallback: (ctx) => {
    const r = ctx.signal.reason as { code?: string } | undefined;
    bump(counters.closedBy, r instanceof TimeoutError ? `timeout:${r.kind}` : (r?.code ?? 'closed'));
  },
});
server.on('connection', () => void counters.admitted++);
server.on('error', (err) => bump(counters.errors, (err as { code?: string }).code ?? err.name));

server.handle(async (s) => {
  counters.sessions++;
  if (s.context.get('auth') === undefined) {
    s.context.set('auth', true);
    counters.authenticated++;
  }
  const [name, arg] = s.rawCommand.split(' ');
  switch (name) {
    case 'work':
      s.write(Buffer.alloc(1024, 0x61));
      return s.exit(0);
    case 'source':
      await source(s, Math.min(Number(arg) || 0, 1024 ** 3));
      return s.signal.aborted ? undefined : s.exit(0);
    case 'idle':
      await new Promise<void>((resolve) => s.signal.addEventListener('abort', () => resolve(), { once: true }));
      return;
    case 'stats': {
      const m = process.memoryUsage();
      s.write(`${JSON.stringify({ ...counters, options: OPTIONS, rss: m.rss, heapUsed: m.heapUsed, external: m.external })}\n`);
      return s.exit(0);
    }
    default:
      s.stderr.write(`unknown command: ${s.rawCommand}\n`);
      return s.exit(127);
  }
});

async function source(s: Session, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  for (let left = bytes; left > 0 && !s.signal.aborted; left -= chunk.length) {
    if (!s.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          s.off('drain', done);
          s.signal.removeEventListener('abort', done);
          resolve();
        };
        s.once('drain', done);
        s.signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

const { port } = await server.listen(0, '127.0.0.1');
announce(port);
watchdog(args.maxMs, () => void server.close());
