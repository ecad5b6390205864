/**
 * runInPty / ptyHandler (node-pty): exit status and signals, resizes, client signals, output
 * untouched and with backpressure, hangup when the client leaves.
 */
import { connect, startServer, waitFor, type TestServer } from '../helpers/harness.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { ptyHandler, runInPty, type Handler, type PtyExit } from '../../src/index.js';

async function withServer(handler: Handler, fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer({ handler });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** Runs `command` with a pty and collects stdout, the exit status and the exit signal. */
async function open(client: ssh2.Client, command: string, cols = 80, rows = 24) {
  const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.exec(command, { pty: { term: 'xterm-256color', cols, rows } }, (err, c) => (err ? reject(err) : resolve(c))),
  );
  let out = Buffer.alloc(0);
  let code: number | null = null;
  let signal: string | undefined;
  ch.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  ch.on('exit', (c: number | null, s?: string) => ((code = c), (signal = s)));
  const closed = new Promise<{ code: number | null; signal: string | undefined }>((resolve) =>
    ch.on('close', () => resolve({ code, signal })),
  );
  return { ch, text: () => out.toString(), bytes: () => out, closed };
}

/** ptyHandler running the exec command through /bin/sh -c. */
const sh = (): Handler => ptyHandler('/bin/sh', (s) => ['-c', s.rawCommand]);

describe('ptyHandler', () => {
  it("ends the session with the program's exit status, or with exit-signal when a signal killed it", async () => {
    await withServer(sh(), async ({ port }) => {
      const client = await connect(port);
      const ok = await open(client, 'echo hi; exit 3');
      assert.deepEqual(await ok.closed, { code: 3, signal: undefined });
      assert.equal(ok.text(), 'hi\r\n');
      const killed = await open(client, 'kill -TERM $$');
      const k = await killed.closed;
      assert.equal(k.signal, 'SIGTERM'); // "TERM" on the wire; ssh2's client adds the prefix
      client.end();
    });
  });

  it('gives the program a real tty of the client size and TERM, and follows window changes', async () => {
    await withServer(sh(), async ({ port }) => {
      const client = await connect(port);
      const s = await open(client, 'test -t 0 && echo tty; echo "$TERM"; stty size; read x; stty size', 100, 30);
      await waitFor(() => s.text().includes('30 100'), 5000, 'the first size');
      s.ch.setWindow(40, 120, 0, 0);
      await new Promise((r) => setTimeout(r, 100));
      s.ch.write('\r');
      assert.equal((await s.closed).code, 0);
      client.end();
      assert.match(s.text(), /^tty\r\nxterm-256color\r\n30 100\r\n\r\n40 120\r\n$/);
    });
  });

  it("passes the program's output through untouched (no \\n → \\r\\n of its own)", async () => {
    await withServer(sh(), async ({ port }) => {
      const client = await connect(port);
      const s = await open(client, "stty -onlcr; printf 'a\\nb\\n'");
      assert.equal((await s.closed).code, 0);
      client.end();
      assert.equal(s.text(), 'a\nb\n');
    });
  });

  it("sends the client's signal requests to the program; ^C typed goes through the tty as SIGINT", async () => {
    await withServer(sh(), async ({ port }) => {
      const client = await connect(port);
      const script = 'trap "echo got INT; exit 5" INT; echo ready; while :; do sleep 0.05; done';
      const viaRequest = await open(client, script);
      await waitFor(() => viaRequest.text().includes('ready'), 5000, 'ready');
      viaRequest.ch.signal('INT');
      assert.deepEqual(await viaRequest.closed, { code: 5, signal: undefined });
      assert.match(viaRequest.text(), /got INT/);
      const typed = await open(client, script);
      await waitFor(() => typed.text().includes('ready'), 5000, 'ready');
      typed.ch.write('\x03');
      assert.equal((await typed.closed).code, 5);
      client.end();
    });
  });

  it('holds a fast program back while the client does not read, then delivers every byte', async () => {
    const lines = 200_000; // 2.2 MB
    let maxBuffered = 0;
    const handler: Handler = async (s) => {
      const write = s.write.bind(s);
      s.write = ((chunk: unknown, ...rest: unknown[]) => {
        const more = (write as (...a: unknown[]) => boolean)(chunk, ...rest);
        maxBuffered = Math.max(maxBuffered, s.writableLength);
        return more;
      }) as typeof s.write;
      await ptyHandler('/bin/sh', ['-c', `yes 0123456789 | head -n ${lines}`])(s);
    };
    await withServer(handler, async ({ port }) => {
      const client = await connect(port);
      const s = await open(client, 'x');
      s.ch.pause();
      await new Promise((r) => setTimeout(r, 1000));
      const heldAt = maxBuffered;
      s.ch.resume();
      assert.equal((await s.closed).code, 0);
      client.end();
      assert.ok(heldAt < 1024 * 1024, `the session buffered ${heldAt} bytes while the client did not read`);
      assert.equal(s.bytes().length, lines * 12);
    });
  });

  it('sends SIGHUP to the program when the client goes away, and finishes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glidessh-pty-'));
    const file = join(dir, 'hup');
    let result: PtyExit | undefined;
    const handler: Handler = async (s) => {
      result = await runInPty(s, '/bin/sh', ['-c', `trap 'echo HUP > ${file}; exit 9' HUP; echo ready; while :; do sleep 0.05; done`]);
    };
    try {
      await withServer(handler, async ({ port }) => {
        const client = await connect(port);
        const s = await open(client, 'x');
        await waitFor(() => s.text().includes('ready'), 5000, 'ready');
        client.destroy();
        await waitFor(() => result !== undefined, 5000, 'runInPty resolved');
      });
      assert.equal(readFileSync(file, 'utf8'), 'HUP\n');
      assert.deepEqual(result, { exitCode: 9, signal: undefined });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts the program in the home directory with an sshd-like environment, not the server\'s', async () => {
    process.env.GLIDESSH_TEST_SECRET = 'hunter2';
    try {
      await withServer(ptyHandler('/bin/sh', ['-c', 'pwd; env | sort'], { env: { EXTRA: '1' } }), async ({ port }) => {
        const client = await connect(port);
        const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
          client.exec('x', { pty: { term: 'vt100' }, env: { LANG: 'C.UTF-8', SECRET_FROM_CLIENT: 'x' } }, (e, c) => (e ? reject(e) : resolve(c))),
        );
        let out = '';
        ch.on('data', (d: Buffer) => (out += d));
        await new Promise((r) => ch.on('close', r));
        client.end();
        const home = process.env.HOME ?? '';
        assert.ok(out.startsWith(`${home}\r\n`), out);
        for (const re of [/^TERM=vt100\r$/m, /^LANG=C\.UTF-8\r$/m, /^EXTRA=1\r$/m, /^SSH_CONNECTION=127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+\r$/m, /^USER=\S+\r$/m]) {
          assert.match(out, re);
        }
        assert.doesNotMatch(out, /GLIDESSH_TEST_SECRET|SECRET_FROM_CLIENT/);
      });
    } finally {
      delete process.env.GLIDESSH_TEST_SECRET;
    }
  });

  it('refuses a session without a pty: "Requires an active PTY", status 1', async () => {
    await withServer(sh(), async ({ port }) => {
      const client = await connect(port);
      const r = await new Promise<{ code: number | null; err: string }>((resolve, reject) =>
        client.exec('true', (e, ch) => {
          if (e) return reject(e);
          let err = '';
          let code: number | null = null;
          ch.stderr.on('data', (d: Buffer) => (err += d));
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('close', () => resolve({ code, err })).resume();
        }),
      );
      client.end();
      assert.deepEqual(r, { code: 1, err: 'Requires an active PTY\n' });
      assert.equal(existsSync('/bin/sh'), true);
    });
  });
});
