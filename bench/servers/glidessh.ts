/**
 * The glidessh server under test, written the way the README shows (a handler over a
 * `Session` stream). Same commands as the raw-ssh2 baseline (see ./common.ts); no auth
 * handlers, so anyone gets in with 'none'.
 *
 *   node --expose-gc bench/.build/bench/servers/glidessh.js --host-key <file>   (after `npx tsc -p tsconfig.bench.json`;
 *   bench/run.ts does both)
 *
 * prints `PORT <n>` once listening on 127.0.0.1.
 */
import { Server, type Session } from '../../src/index.js';
import { announce, CHUNK, LINES, parseArgs, parseCommand, stats, watchdog } from './common.js';

const args = parseArgs(process.argv.slice(2));
const server = new Server({ hostKeys: [args.hostKey] });
server.on('error', () => undefined);
server.handle(async (s) => {
  const cmd = parseCommand(s.rawCommand);
  switch (cmd.name) {
    case 'sink': {
      let n = 0;
      for await (const chunk of s) n += (chunk as Buffer).length;
      s.write(`${n}\n`);
      return s.exit(0);
    }
    case 'source':
      await source(s, cmd.bytes);
      return s.signal.aborted ? undefined : s.exit(0);
    case 'echo':
      for await (const chunk of s) s.write(chunk);
      return s.exit(0);
    case 'idle':
      return closed(s);
    case 'stats':
      s.write(stats(cmd.gc));
      return s.exit(0);
    case 'true':
      return s.exit(0);
    default:
      s.stderr.write(`unknown command: ${cmd.text}\n`);
      return s.exit(127);
  }
});

const { port } = await server.listen(0, '127.0.0.1');
announce(port);
watchdog(args.maxMs, () => void server.close());

/**
 * Resolves when the session closes. A 'close' listener rather than `s.signal`: the signal is
 * made on first use, and an AbortController with its EventTarget costs about 0.5 KB per session.
 */
function closed(s: Session): Promise<void> {
  return new Promise((resolve) => s.once('close', resolve));
}

async function source(s: Session, bytes: number): Promise<void> {
  // One 'drain' and one 'abort' listener for the whole stream; each full buffer waits for either.
  let wake: (() => void) | undefined;
  const onEvent = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  s.on('drain', onEvent);
  s.signal.addEventListener('abort', onEvent, { once: true });
  try {
    let left = bytes;
    while (left > 0 && !s.signal.aborted) {
      const len = Math.min(left, CHUNK);
      left -= len;
      if (!s.write(len === CHUNK ? LINES : LINES.subarray(0, len)) && !s.signal.aborted) {
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    s.off('drain', onEvent);
    s.signal.removeEventListener('abort', onEvent);
  }
}
