/**
 * The benchmark itself is not part of `npm test` (it takes minutes); this runs its `--smoke`
 * mode (tiny sizes, a few seconds) so that it keeps working: every server starts and every
 * metric is measured for both raw ssh2 and glidessh. Whether glidessh meets the targets is not
 * checked here (a smoke run is far too short for that).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIMIT_MS = 60_000;

const METRICS = [
  'up_aes_MBps',
  'down_aes_MBps',
  'up_chacha_MBps',
  'down_chacha_MBps',
  'cpu_up_aes_ms_per_MiB',
  'cpu_down_aes_ms_per_MiB',
  'ssh_exec_ms',
  'connect_p50_ms',
  'connect_p90_ms',
  'cpu_per_conn_ms',
  'echo_p50_us',
  'echo_p99_us',
  'mem_heap_ext_KB',
  'mem_rss_KB',
  'stream_MBps',
  'pty_stream_MBps',
  'pty_ratio',
  'stream_cpu_ms_per_MiB',
  'pty_stream_cpu_ms_per_MiB',
];
/**
 * An RSS delta is page-granular and the process may reuse pages it already has: for the 50
 * sessions of a smoke run it can be 0 (or, rarely, a little below). It must still be a number.
 */
const ANY_SIGN = new Set(['mem_rss_KB']);

interface BenchJson {
  mode: string;
  servers: Record<string, { metrics: Record<string, number | null> }>;
  rows: Array<{ key: string }>;
  table: string;
}

test('bench --smoke measures every metric for raw ssh2 and glidessh', { timeout: LIMIT_MS + 15_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glidessh-bench-test-'));
  try {
    const jsonPath = join(dir, 'bench.json');
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--no-sshd', '--json', jsonPath], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    let timedOut = false;
    // SIGINT lets the benchmark stop its servers; SIGKILL if it does not exit soon after.
    const soft = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
    }, LIMIT_MS);
    const hard = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS + 10_000);
    const code = await new Promise<number | null>((resolveExit) => child.once('close', (c) => resolveExit(c)));
    clearTimeout(soft);
    clearTimeout(hard);

    assert.equal(timedOut, false, `bench --smoke took more than ${LIMIT_MS} ms\n${output}`);
    assert.equal(code, 0, `bench --smoke exited ${code}\n${output}`);
    assert.match(output, /\| metric \| raw ssh2 \| glidessh \| glidessh\/raw \| target \| result \|/);

    const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchJson;
    assert.equal(json.mode, 'smoke');
    assert.deepEqual(
      json.rows.map((r) => r.key).sort(),
      [...METRICS].sort(),
      'the table has one row per metric',
    );
    for (const server of ['raw', 'glidessh']) {
      const metrics = json.servers[server]?.metrics;
      assert.ok(metrics, `no results for ${server}`);
      for (const key of METRICS) {
        const v: number | null | undefined = metrics[key];
        assert.equal(typeof v, 'number', `${server}.${key} is missing`);
        assert.ok(Number.isFinite(v), `${server}.${key} = ${v}`);
        if (!ANY_SIGN.has(key)) assert.ok(v! > 0, `${server}.${key} = ${v}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
