/**
 * The SFTP benchmark is not part of `npm test` (it moves gigabytes); its `--smoke` mode (4 MiB,
 * one sample) runs here so that it keeps working: the glidessh server starts, the bytes are
 * checked, both directions are measured, and OpenSSH's sftp-server too where sshd is
 * installed. Whether the target is met is not checked (a smoke run is far too short).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIMIT_MS = 60_000;

interface Row {
  key: string;
  sshd: number | null;
  glidessh: number | null;
}

test('bench/sftp.ts --smoke measures sftp get and put for glidessh (and OpenSSH when installed)', { timeout: LIMIT_MS + 15_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glidessh-bench-sftp-test-'));
  try {
    const jsonPath = join(dir, 'sftp.json');
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/sftp.ts', '--smoke', '--json', jsonPath], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // SIGINT lets the benchmark stop what it started; SIGKILL if it does not exit soon after.
    const soft = setTimeout(() => child.kill('SIGINT'), LIMIT_MS);
    const hard = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS + 10_000);
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    clearTimeout(soft);
    clearTimeout(hard);
    assert.equal(code, 0, output);
    assert.match(output, /\| transfer \| OpenSSH sftp-server \| glidessh \| glidessh\/OpenSSH \| target \| result \|/);
    const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as { mode: string; rows: Row[] };
    assert.equal(json.mode, 'smoke');
    assert.deepEqual(json.rows.map((r) => r.key), ['get_MBps', 'put_MBps']);
    const sshd = existsSync('/usr/sbin/sshd') && existsSync('/usr/lib/openssh/sftp-server') && (process.getuid?.() !== 0 || existsSync('/run/sshd'));
    for (const r of json.rows) {
      assert.ok(typeof r.glidessh === 'number' && r.glidessh > 0, `${r.key}: ${r.glidessh}`);
      if (sshd) assert.ok(typeof r.sshd === 'number' && r.sshd > 0, `${r.key} sshd: ${r.sshd}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
