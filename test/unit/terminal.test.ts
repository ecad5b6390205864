/**
 * createTerminal: a session's pty as TTY streams, per session, for readline, @inquirer/prompts
 * and blessed; colorLevel from TERM and the client's env.
 */
import { connect, startServer, waitFor, type TestServer } from '../helpers/harness.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import type ssh2 from 'ssh2';
import { input, select } from '@inquirer/prompts';
import { colorLevel, createTerminal, NoPtyError, type Session, type Terminal } from '../../src/index.js';

/** Opens a shell with a pty and collects what it prints. */
async function shell(
  client: ssh2.Client,
  pty: ssh2.PseudoTtyOptions = { term: 'xterm-256color', cols: 80, rows: 24 },
  env: Record<string, string> = {},
): Promise<{ ch: ssh2.ClientChannel; text: () => string; closed: Promise<number | null> }> {
  const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.shell(pty, { env }, (err, c) => (err ? reject(err) : resolve(c))),
  );
  let out = '';
  let code: number | null = null;
  ch.on('data', (d: Buffer) => (out += d.toString()));
  ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
  ch.on('exit', (c: number | null) => (code = c));
  const closed = new Promise<number | null>((resolve) => ch.on('close', (c?: number) => resolve(code ?? c ?? null)));
  return { ch, text: () => out, closed };
}

/** A server whose handler hands each session's terminal to `use`. */
async function serve(use: (term: Terminal, s: Session) => Promise<void>): Promise<TestServer> {
  const srv = await startServer();
  srv.server.handle(async (s) => {
    const term = createTerminal(s);
    try {
      await use(term, s);
    } finally {
      await term.close();
    }
  });
  return srv;
}

describe('colorLevel', () => {
  const cases: Array<[string | undefined, Record<string, string>, number]> = [
    ['xterm-256color', {}, 2],
    ['tmux-256color', {}, 2],
    ['xterm-256color', { COLORTERM: 'truecolor' }, 3],
    ['xterm', { COLORTERM: '24bit' }, 3],
    ['xterm', {}, 1],
    ['screen', {}, 1],
    ['linux', {}, 1],
    ['xterm-kitty', {}, 3],
    ['xterm-direct', {}, 3],
    ['dumb', { COLORTERM: 'truecolor' }, 0],
    [undefined, {}, 0],
    ['', {}, 0],
    ['vt52', {}, 0],
    ['vt52', { COLORTERM: 'yes' }, 1],
    ['xterm-256color', { NO_COLOR: '1' }, 0],
    ['xterm-256color', { NO_COLOR: '' }, 2],
    ['dumb', { FORCE_COLOR: '3' }, 3],
    ['xterm-256color', { FORCE_COLOR: '0' }, 0],
    ['xterm-256color', { FORCE_COLOR: '' }, 1],
  ];
  for (const [term, env, level] of cases) {
    it(`TERM=${term} ${JSON.stringify(env)} → ${level}`, () => assert.equal(colorLevel(term, env), level));
  }
});

describe('createTerminal', () => {
  it('gives TTY streams sized from the pty, with the color level from TERM and the client env', async () => {
    let seen: Record<string, unknown> | undefined;
    const srv = await serve(async (term) => {
      const { stdin, stdout, stderr } = term;
      seen = {
        stdinTTY: stdin.isTTY,
        raw: stdin.setRawMode(true) === stdin && stdin.isRaw,
        refUnref: stdin.ref() === stdin && stdin.unref() === stdin,
        stdoutTTY: stdout.isTTY,
        stderrTTY: stderr.isTTY,
        size: stdout.getWindowSize(),
        errSize: [stderr.columns, stderr.rows],
        depth: stdout.getColorDepth(),
        depthDumb: stdout.getColorDepth({ TERM: 'dumb' }),
        has256: stdout.hasColors(256),
        hasMillions: stdout.hasColors(2 ** 24),
        level: term.colorLevel,
        term: term.term,
        env: term.env,
      };
      stdout.cursorTo(0, 0);
      stdout.clearLine(0);
      stdout.write('ready\n');
    });
    try {
      const client = await connect(srv.port);
      const { text, closed } = await shell(client, { term: 'xterm-256color', cols: 100, rows: 30 }, { COLORTERM: 'truecolor', LANG: 'C.UTF-8' });
      assert.equal(await closed, 0);
      client.end();
      assert.deepEqual(seen, {
        stdinTTY: true,
        raw: true,
        refUnref: true,
        stdoutTTY: true,
        stderrTTY: true,
        size: [100, 30],
        errSize: [100, 30],
        depth: 24,
        depthDumb: 1,
        has256: true,
        hasMillions: true,
        level: 3,
        term: 'xterm-256color',
        env: { COLORTERM: 'truecolor', LANG: 'C.UTF-8' },
      });
      assert.equal(text(), '\x1b[1;1H\x1b[2Kready\r\n');
    } finally {
      await srv.close();
    }
  });

  it('throws NoPtyError (ERR_NO_PTY) for a session without a pty', async () => {
    let thrown: unknown;
    const srv = await startServer({ handler: (s) => void (thrown = (() => { try { createTerminal(s); } catch (e) { return e; } })()) });
    try {
      const client = await connect(srv.port);
      await new Promise<void>((resolve, reject) => client.exec('x', (err, ch) => (err ? reject(err) : ch.on('close', () => resolve()).resume())));
      client.end();
      assert.ok(thrown instanceof NoPtyError);
      assert.equal((thrown as NoPtyError).code, 'ERR_NO_PTY');
    } finally {
      await srv.close();
    }
  });

  it('two users at once each get their own size and resize events', async () => {
    const sizes = new Map<string, string[]>();
    const srv = await serve(async (term, s) => {
      const log: string[] = [`${term.stdout.columns}x${term.stdout.rows}`];
      sizes.set(s.user, log);
      term.stdout.on('resize', () => log.push(`${term.stdout.columns}x${term.stdout.rows}`));
      term.stdout.write('go\n');
      for await (const key of term.stdin) if (String(key).includes('q')) break;
    });
    try {
      const [ada, bob] = await Promise.all([connect(srv.port, { username: 'ada' }), connect(srv.port, { username: 'bob' })]);
      const a = await shell(ada, { term: 'xterm', cols: 80, rows: 24 });
      const b = await shell(bob, { term: 'xterm', cols: 132, rows: 43 });
      await waitFor(() => a.text().includes('go') && b.text().includes('go'), 5000, 'both started');
      a.ch.setWindow(30, 100, 0, 0);
      await waitFor(() => sizes.get('ada')!.length === 2, 5000, "ada's resize");
      b.ch.setWindow(50, 150, 0, 0);
      b.ch.setWindow(50, 150, 0, 0); // the same size again: no event
      b.ch.setWindow(51, 150, 0, 0);
      await waitFor(() => sizes.get('bob')!.length === 3, 5000, "bob's resizes");
      a.ch.write('q');
      b.ch.write('q');
      await Promise.all([a.closed, b.closed]);
      ada.end();
      bob.end();
      assert.deepEqual(sizes.get('ada'), ['80x24', '100x30']);
      assert.deepEqual(sizes.get('bob'), ['132x43', '150x50', '150x51']);
    } finally {
      await srv.close();
    }
  });

  it('stdout waits for a slow client (write() returns false, then drain) and delivers everything', async () => {
    const total = 8 * 1024 * 1024;
    let falses = 0;
    const srv = await serve(async (term) => {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let sent = 0; sent < total; sent += chunk.length) {
        if (!term.stdout.write(chunk)) {
          falses++;
          await once(term.stdout, 'drain');
        }
      }
      await new Promise<void>((r) => term.stdout.write('', () => r()));
    });
    try {
      const client = await connect(srv.port);
      const { ch, closed } = await shell(client);
      let got = 0;
      ch.removeAllListeners('data');
      ch.pause();
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(falses > 0, 'the writer was told to wait while the client did not read');
      const waitedAt = falses;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(falses, waitedAt, 'and it waited: no more writes until drain');
      ch.on('data', (d: Buffer) => (got += d.length));
      ch.resume();
      assert.equal(await closed, 0);
      client.end();
      assert.equal(got, total);
    } finally {
      await srv.close();
    }
  });

  it('close() removes every listener it added to the session and leaves it usable; closing the session closes it', async () => {
    const counts: Array<Record<string, number>> = [];
    let auto: Terminal | undefined;
    const count = (s: Session): Record<string, number> =>
      Object.fromEntries(['data', 'end', 'window-change'].map((e) => [e, s.listenerCount(e)]));
    const srv = await startServer();
    srv.server.handle(async (s) => {
      counts.push(count(s));
      const term = createTerminal(s);
      counts.push(count(s));
      term.close();
      term.close();
      counts.push(count(s));
      assert.equal(term.closed, true);
      term.stdout.write('dropped after close\n');
      s.write('session still works\n');
      auto = createTerminal(s);
      await new Promise((r) => setTimeout(r, 10_000).unref());
    });
    try {
      const client = await connect(srv.port);
      const { text, ch, closed } = await shell(client);
      await waitFor(() => text().includes('session still works'), 5000, 'output');
      ch.close();
      await closed;
      await waitFor(() => auto?.closed === true, 5000, 'the terminal closes with the session');
      client.end();
      assert.deepEqual(counts[0], counts[2], 'no listeners left behind');
      assert.deepEqual(counts[1], { data: counts[0]!.data! + 1, end: counts[0]!.end! + 1, 'window-change': counts[0]!['window-change']! + 1 });
      assert.doesNotMatch(text(), /dropped/);
    } finally {
      await srv.close();
    }
  });

  it("works with Node's readline (terminal: true): prompt, line editing, answer", async () => {
    let answer = '';
    const srv = await serve(async (term) => {
      const rl = createInterface({ input: term.stdin, output: term.stdout, terminal: true });
      answer = await new Promise<string>((resolve) => rl.question('name? ', resolve));
      rl.close();
    });
    try {
      const client = await connect(srv.port);
      const { ch, text, closed } = await shell(client);
      await waitFor(() => text().includes('name? '), 5000, 'the prompt');
      ch.write('adx\x7fa\r'); // a typo, backspace, fixed
      assert.equal(await closed, 0);
      client.end();
      assert.equal(answer, 'ada');
    } finally {
      await srv.close();
    }
  });

  it('works with @inquirer/prompts: an input then a select on the same terminal', async () => {
    const answers: string[] = [];
    const srv = await serve(async (term) => {
      const io = { input: term.stdin, output: term.stdout };
      answers.push(await input({ message: 'Your name' }, io));
      answers.push(await select({ message: 'Flavor', choices: ['vanilla', 'chocolate', 'mint'] }, io));
      term.stdout.write(`bye ${answers.join(' ')}\n`);
    });
    try {
      const client = await connect(srv.port);
      const { ch, text, closed } = await shell(client);
      await waitFor(() => text().includes('Your name'), 5000, 'the input prompt');
      ch.write('ada\r');
      await waitFor(() => text().includes('Flavor'), 5000, 'the select prompt');
      ch.write('\x1b[B');
      await waitFor(() => /❯ chocolate/.test(text()), 5000, 'the cursor on chocolate');
      ch.write('\r');
      assert.equal(await closed, 0);
      client.end();
      assert.deepEqual(answers, ['ada', 'chocolate']);
      assert.match(text(), /bye ada chocolate\r\n/);
    } finally {
      await srv.close();
    }
  });

  it('works with neo-blessed: a screen of the client\'s size that draws, takes keys and follows a resize', async () => {
    const blessed = createRequire(import.meta.url)('neo-blessed') as Blessed;
    const seen: string[] = [];
    const srv = await serve(async (term) => {
      const screen = blessed.screen({ input: term.stdin, output: term.stdout, terminal: term.term, smartCSR: true });
      try {
        const box = blessed.box({ parent: screen, top: 0, left: 0, width: '100%', height: 3, content: 'hello-from-blessed' });
        screen.render();
        seen.push(`${screen.width}x${screen.height}`);
        await new Promise<void>((resolve) => {
          screen.on('resize', () => {
            seen.push(`${screen.width}x${screen.height}`);
            box.setContent('RESIZED');
            screen.render();
          });
          screen.key(['q'], () => resolve());
        });
      } finally {
        screen.destroy();
      }
    });
    try {
      const client = await connect(srv.port);
      const { ch, text, closed } = await shell(client, { term: 'xterm', cols: 90, rows: 20 });
      await waitFor(() => text().includes('hello-from-blessed'), 5000, 'the box');
      ch.setWindow(25, 100, 0, 0);
      await waitFor(() => text().includes('RESIZED'), 5000, 'the redraw');
      ch.write('q');
      assert.equal(await closed, 0);
      client.end();
      assert.deepEqual(seen, ['90x20', '100x25']);
    } finally {
      await srv.close();
    }
  });
});

/** The part of neo-blessed used above (it ships no types). */
interface Blessed {
  screen(o: { input: unknown; output: unknown; terminal: string; smartCSR: boolean }): BlessedScreen;
  box(o: { parent: BlessedScreen; top: number; left: number; width: string; height: number; content: string }): { setContent(s: string): void };
}
interface BlessedScreen {
  width: number;
  height: number;
  render(): void;
  destroy(): void;
  on(event: 'resize', fn: () => void): void;
  key(keys: string[], fn: () => void): void;
}
