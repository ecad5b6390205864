/**
 * A real HAProxy (Debian's haproxy) in front of the server on loopback, sending PROXY v1
 * (`send-proxy`) and v2 (`send-proxy-v2`): the server sees the real client address, here a
 * distinct loopback source the OpenSSH client binds to with `-b`.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ssh, startServer, waitFor } from '../helpers/harness.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => spawnSync(p, ['-v']).status === 0);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startHaproxy(t: { after(fn: () => unknown): void }, backendPort: number, send: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'glidessh-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 100',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend ssh_in',
      `  bind 127.0.0.1:${port}`,
      '  default_backend glidessh',
      'backend glidessh',
      `  server s1 127.0.0.1:${backendPort} ${send}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(HAPROXY!, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${err}`);
      const probe = spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
      return probe.status === 0;
    },
    10_000,
    'haproxy to listen',
  );
  return port;
}

describe('behind HAProxy with the PROXY protocol', () => {
  for (const send of ['send-proxy', 'send-proxy-v2']) {
    it(`${send}: the session sees the client's own address (ssh -b 127.0.0.9)`, async (t) => {
      if (!HAPROXY) {
        assert.ok(!process.env.CI, 'haproxy must be installed in CI (.ci/run installs it)');
        t.skip('haproxy is not installed (Debian: haproxy)');
        return;
      }
      const ts = await startServer({
        proxyProtocol: { trusted: ['127.0.0.1'] },
        handler: async (s) => {
          s.write(`${s.remoteAddress} ${s.context.remoteAddress}\n`);
        },
      });
      t.after(() => ts.close());
      const front = await startHaproxy(t, ts.port, send);
      const r = await ssh(front, ['-b', '127.0.0.9', 'x']);
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), '127.0.0.9 127.0.0.9\n');
      // A client that bypasses the proxy (no header) is dropped.
      const direct = await ssh(ts.port, ['x']);
      assert.equal(direct.code, 255);
    });
  }
});
