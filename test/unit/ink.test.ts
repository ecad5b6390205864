/**
 * glidessh/ink: one Ink render per session, with that session's size, keys and lifetime;
 * nothing left behind when a client leaves mid-render; live rendering also with CI set; a
 * clear error when ink is not installed.
 */
import { connect, run, startServer, waitFor, type TestServer } from '../helpers/harness.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h, useEffect, useState } from 'react';
import type ssh2 from 'ssh2';
import { inkHandler, loadInk, type InkHandlerOptions } from '../../src/ink.js';
import type { Handler, Middleware, Session } from '../../src/index.js';

// Through loadInk(), as users should: with a static `import … from 'ink'`, Ink 6 would render
// only final frames when this runs with CI=true.
const { Text, useApp, useInput, useStdout } = await loadInk();

/** Shows the user, a counter (+ adds one), and the window size Ink's stdout reports. */
function Counter({ user, onCtrlC }: { user: string; onCtrlC?: () => void }) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [n, setN] = useState(0);
  const [size, setSize] = useState(`${stdout.columns}x${stdout.rows}`);
  useEffect(() => {
    const onResize = (): void => setSize(`${stdout.columns}x${stdout.rows}`);
    stdout.on('resize', onResize);
    return () => void stdout.off('resize', onResize);
  }, [stdout]);
  useInput((input, key) => {
    // Keys typed quickly arrive together ("++"), as from a paste.
    const plus = [...input].filter((c) => c === '+').length;
    if (plus) setN((x) => x + plus);
    if (input === 'q') exit();
    if (input === 'e') exit(new Error('the app failed'));
    if (key.ctrl && input === 'c') onCtrlC?.();
  });
  return h(Text, null, `[${user} count=${n} size=${size}]`);
}

async function withInk(handler: Handler, fn: (s: TestServer) => Promise<void>, middleware: Middleware[] = []): Promise<void> {
  const s = await startServer();
  s.server.use(...middleware);
  s.server.handle(handler);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

async function shell(client: ssh2.Client, cols: number, rows: number) {
  const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.shell({ term: 'xterm-256color', cols, rows }, (err, c) => (err ? reject(err) : resolve(c))),
  );
  let out = '';
  let code: number | null = null;
  ch.on('data', (d: Buffer) => (out += d.toString()));
  ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
  ch.on('exit', (c: number | null) => (code = c));
  const closed = new Promise<number | null>((resolve) => ch.on('close', (c?: number) => resolve(code ?? c ?? null)));
  return { ch, text: () => out, closed };
}

const counter = (options?: InkHandlerOptions, onCtrlC?: () => void): Handler =>
  inkHandler((session) => h(Counter, { user: session.user, onCtrlC }), options);

describe('inkHandler', () => {
  it('renders one app per session with its own size, input and resizes; useApp().exit() ends the session with 0', async () => {
    await withInk(counter(), async ({ port }) => {
      const [ada, bob] = await Promise.all([connect(port, { username: 'ada' }), connect(port, { username: 'bob' })]);
      const a = await shell(ada, 80, 24);
      const b = await shell(bob, 120, 40);
      await waitFor(() => a.text().includes('[ada count=0 size=80x24]'), 5000, "ada's first frame");
      await waitFor(() => b.text().includes('[bob count=0 size=120x40]'), 5000, "bob's first frame");
      a.ch.write('++');
      await waitFor(() => a.text().includes('[ada count=2 size=80x24]'), 5000, "ada's keys");
      a.ch.setWindow(30, 100, 0, 0);
      await waitFor(() => a.text().includes('[ada count=2 size=100x30]'), 5000, "ada's resize");
      assert.doesNotMatch(b.text(), /count=[12]|100x30/, "ada's keys and size never reach bob");
      // Frames are drawn with CRLF line ends (Ink writes bare \n) and cursor movements.
      assert.match(a.text(), /\x1b\[/);
      a.ch.write('q');
      b.ch.write('q');
      assert.equal(await a.closed, 0);
      assert.equal(await b.closed, 0);
      ada.end();
      bob.end();
    });
  });

  it('^C unmounts the app and ends the session with 0; with exitOnCtrlC: false the app gets it as input', async () => {
    await withInk(counter(), async ({ port }) => {
      const client = await connect(port);
      const s = await shell(client, 80, 24);
      await waitFor(() => s.text().includes('count=0'), 5000, 'the first frame');
      s.ch.write('\x03');
      assert.equal(await s.closed, 0);
      client.end();
    });
    let ctrlC = 0;
    await withInk(counter({ exitOnCtrlC: false }, () => ctrlC++), async ({ port }) => {
      const client = await connect(port);
      const s = await shell(client, 80, 24);
      await waitFor(() => s.text().includes('count=0'), 5000, 'the first frame');
      s.ch.write('\x03');
      await waitFor(() => ctrlC === 1, 5000, 'the app saw ^C');
      s.ch.write('+');
      await waitFor(() => s.text().includes('count=1'), 5000, 'still running');
      s.ch.write('q');
      assert.equal(await s.closed, 0);
      client.end();
    });
  });

  it('an app that exits with an error ends the session with 1 and reports the error', async () => {
    await withInk(counter(), async ({ port, errors }) => {
      const client = await connect(port);
      const s = await shell(client, 80, 24);
      await waitFor(() => s.text().includes('count=0'), 5000, 'the first frame');
      s.ch.write('e');
      assert.equal(await s.closed, 1);
      client.end();
      await waitFor(() => errors.length === 1, 5000, 'the reported error');
      assert.equal(errors[0]!.message, 'the app failed');
    });
  });

  it('refuses a session without a pty: "Requires an active PTY", status 1', async () => {
    await withInk(counter(), async ({ port }) => {
      const client = await connect(port);
      const r = await new Promise<{ code: number | null; err: string }>((resolve, reject) =>
        client.exec('x', (e, ch) => {
          if (e) return reject(e);
          let err = '';
          ch.stderr.on('data', (d: Buffer) => (err += d));
          let code: number | null = null;
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('close', () => resolve({ code, err })).resume();
        }),
      );
      client.end();
      assert.deepEqual(r, { code: 1, err: 'Requires an active PTY\n' });
    });
  });

  it('does not patch the global console, and console output stays out of the sessions', async () => {
    const original = console.log;
    let during: unknown;
    const handler = inkHandler(() => {
      setImmediate(() => {
        during = console.log;
      });
      return h(Text, null, 'hi');
    });
    await withInk(handler, async ({ port }) => {
      const client = await connect(port);
      const s = await shell(client, 80, 24);
      await waitFor(() => s.text().includes('hi') && during !== undefined, 5000, 'the frame');
      assert.equal(during, original);
      s.ch.write('\x03');
      await s.closed;
      client.end();
    });
  });

  it('a client that disconnects mid-render leaves no timers, process listeners or session listeners behind', async () => {
    const events = ['data', 'end', 'window-change', 'signal', 'drain', 'readable'] as const;
    const sessionCounts: Array<{ before: number[]; after: number[] }> = [];
    const watch: Middleware = (next) => async (s: Session) => {
      const before = events.map((e) => s.listenerCount(e));
      await next(s);
      sessionCounts.push({ before, after: events.map((e) => s.listenerCount(e)) });
    };
    /** Redraws every 5 ms until it is unmounted. */
    function Busy() {
      const [n, setN] = useState(0);
      useEffect(() => {
        const t = setInterval(() => setN((x) => x + 1), 5);
        return () => clearInterval(t);
      }, []);
      return h(Text, null, `frame ${n} ${'#'.repeat(n % 50)}`);
    }
    const procEvents = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    /** Process listeners, plus the exit hooks Ink registers through signal-exit (one per instance). */
    const procCounts = (): number[] => [
      ...procEvents.map((e) => process.listenerCount(e)),
      (process as { __signal_exit_emitter__?: { listenerCount(e: string): number } }).__signal_exit_emitter__?.listenerCount('exit') ?? 0,
    ];
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
    const warnings: Error[] = [];
    const onWarning = (w: Error): number => warnings.push(w);
    process.on('warning', onWarning);
    try {
      await withInk(
        inkHandler(() => h(Busy)),
        async ({ port }) => {
          // One session first: Ink installs a few process-wide things once (cli-cursor's exit
          // hook that restores the server's own cursor); what is measured is growth per session.
          const warm = await connect(port);
          const w = await shell(warm, 80, 24);
          await waitFor(() => /frame [1-9]/.test(w.text()), 5000, 'the warm-up frame');
          warm.destroy();
          await waitFor(() => sessionCounts.length === 1, 5000, 'the warm-up session ended');
          const baseProc = procCounts();
          const baseTimers = timers();
          const clients = await Promise.all(Array.from({ length: 12 }, () => connect(port)));
          const shells = await Promise.all(clients.map((c, i) => shell(c, 60 + i, 20)));
          await waitFor(() => shells.every((s) => /frame [1-9]\d/.test(s.text())), 10_000, 'every app rendering');
          assert.equal(procCounts().at(-1), baseProc.at(-1)! + 12, "each Ink instance's exit hook is counted (the check can see leaks)");
          assert.ok(timers() > baseTimers, 'and its timers are counted');
          // Gone without a goodbye: the TCP connections just close.
          for (const c of clients) c.destroy();
          await waitFor(() => sessionCounts.length === 13, 10_000, 'every handler finished');
          await waitFor(() => timers() <= baseTimers, 5000, 'no timers left');
          assert.deepEqual(procCounts(), baseProc, 'no process listeners left');
        },
        [watch],
      );
    } finally {
      process.off('warning', onWarning);
    }
    for (const { before, after } of sessionCounts) assert.deepEqual(after, before, 'no session listeners left');
    assert.deepEqual(warnings.map((w) => `${w.name}: ${w.message}`), [], 'no MaxListenersExceededWarning or other warnings');
  });
});

describe('loadInk', () => {
  it('keeps Ink live when the server runs with CI=true (and leaves CI as it was)', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'test/fixtures/load-ink.ts'], { env: { ...process.env, CI: 'true' } });
    assert.equal(r.code, 0, r.stderr.toString());
    assert.deepEqual(JSON.parse(r.stdout.toString()), { CI: 'true', inkSeesCi: false, render: 'function', same: true, warnings: [] });
  });

  it('warns when Ink was already imported with CI set (Ink < 7 then renders only the last frame)', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'test/fixtures/load-ink.ts', 'static'], { env: { ...process.env, CI: 'true' } });
    assert.equal(r.code, 0, r.stderr.toString());
    const out = JSON.parse(r.stdout.toString()) as { inkSeesCi: boolean; warnings: string[] };
    assert.equal(out.inkSeesCi, true);
    assert.deepEqual(out.warnings, ['GLIDESSH_INK_NON_INTERACTIVE']);
  });

  it('without ink, react and node-pty installed: glidessh still works, and each optional feature says what to install', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', '--import', './test/helpers/hide-modules.mjs', 'test/fixtures/missing-deps.ts'], {
      env: { ...process.env, HIDE_MODULES: 'ink,react,node-pty' },
    });
    assert.equal(r.code, 0, r.stderr.toString());
    const out = JSON.parse(r.stdout.toString()) as Record<string, { glidessh: boolean; code: string; dependency: string; message: string }>;
    assert.equal(out.listened as unknown, true);
    assert.equal(out.ink!.code, 'ERR_MISSING_DEPENDENCY');
    assert.equal(out.ink!.glidessh, true);
    assert.equal(out.ink!.dependency, 'ink');
    assert.match(out.ink!.message, /npm install ink/);
    assert.equal(out.pty!.code, 'ERR_MISSING_DEPENDENCY');
    assert.equal(out.pty!.dependency, 'node-pty');
    assert.match(out.pty!.message, /runInPty\(\) needs the optional package "node-pty".*`npm install node-pty`/);
  });
});
