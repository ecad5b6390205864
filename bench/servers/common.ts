/**
 * What both benchmark servers share: argument parsing, the host key, the `source` payload,
 * the `stats` report and the watchdog that ends the process when the benchmark is gone.
 *
 * Commands (identical semantics in bench/servers/raw-ssh2.ts and bench/servers/glidessh.ts):
 *   sink        read stdin to EOF, write the byte count and "\n", exit 0
 *   source N    write N bytes (80-char lines) in 64 KiB chunks, honouring backpressure, exit 0
 *   echo        copy stdin to stdout until EOF, exit 0
 *   idle        stay open until the client closes the channel
 *   stats [nogc] print process CPU and memory as JSON (after gc() unless "nogc"), exit 0
 *   true        exit 0 at once
 */
import { readFileSync } from 'node:fs';

/** Bytes per `source` write. */
export const CHUNK = 64 * 1024;
/** Upper bound for `source N` (a typo must not stream forever). */
export const MAX_SOURCE = 64 * 1024 ** 3;

/** 64 KiB of 79 printable bytes and a `\n`, repeated: the pty path has newlines to convert. */
export const LINES: Buffer = (() => {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let i = 0; i < CHUNK; i++) b[i] = i % 80 === 79 ? 0x0a : 0x61 + (i % 26);
  return b;
})();

export type Command =
  | { name: 'sink' }
  | { name: 'source'; bytes: number }
  | { name: 'echo' }
  | { name: 'idle' }
  | { name: 'stats'; gc: boolean }
  | { name: 'true' }
  | { name: 'unknown'; text: string };

/** Parses an exec command line. */
export function parseCommand(text: string): Command {
  const [name, arg] = text.trim().split(/\s+/);
  switch (name) {
    case 'sink':
    case 'echo':
    case 'idle':
    case 'true':
      return { name };
    case 'stats':
      return { name: 'stats', gc: arg !== 'nogc' };
    case 'source': {
      const bytes = Number(arg);
      if (Number.isSafeInteger(bytes) && bytes >= 0 && bytes <= MAX_SOURCE) return { name: 'source', bytes };
      return { name: 'unknown', text };
    }
    default:
      return { name: 'unknown', text };
  }
}

export interface ProcessStats {
  cpuUserMs: number;
  cpuSystemMs: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** CPU is read before the optional gc(), so a gc() here is billed to the next interval only. */
export function stats(gc: boolean): string {
  const cpu = process.cpuUsage();
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect) {
    collect();
    collect();
  }
  const mem = process.memoryUsage();
  const out: ProcessStats = {
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
  };
  return `${JSON.stringify(out)}\n`;
}

export interface ServerArgs {
  hostKey: string;
  maxMs: number;
}

/** `--host-key <file>` (required) and `--max-ms <n>` (default 1 hour). */
export function parseArgs(argv: string[]): ServerArgs {
  let hostKeyFile: string | undefined;
  let maxMs = 3_600_000;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--host-key') hostKeyFile = argv[++i];
    else if (argv[i] === '--max-ms') maxMs = Number(argv[++i]);
  }
  if (!hostKeyFile) throw new Error('--host-key <file> is required');
  if (!(maxMs > 0)) throw new Error('--max-ms must be a positive number');
  return { hostKey: readFileSync(hostKeyFile, 'utf8'), maxMs };
}

/**
 * Ends the process when the benchmark that started it is gone (stdin closes), on SIGTERM or
 * SIGINT, and after `maxMs` in any case.
 */
export function watchdog(maxMs: number, onStop: () => void): void {
  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    try {
      onStop();
    } finally {
      process.exit(code);
    }
  };
  process.stdin.on('end', () => stop(0));
  process.stdin.on('error', () => stop(0));
  process.stdin.resume();
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  setTimeout(() => stop(3), maxMs).unref();
}

/** Tells the benchmark where we listen. */
export function announce(port: number): void {
  process.stdout.write(`PORT ${port}\n`);
}
