/**
 * Session behaviour seen from an ssh2 client: output, exit codes, stdin, metadata, pty,
 * window changes, signals, break, channel requests to the client, flow control.
 * Ports gliderlabs/ssh session_test.go and adds what it leaves untested.
 */
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import type ssh2 from 'ssh2';
import channelModule from 'ssh2/lib/Channel.js';
import { collect, connect, exec, startServer, waitFor, type ExecResult, type TestServer } from '../helpers/harness.js';
import { channelRequest, openChannel, ptyData, Wire, windowData } from '../helpers/raw.js';
import { encodeTerminalModes } from '../../src/pty.js';
import type { Context, ServerOptions, Session, Window } from '../../src/index.js';

const { MAX_WINDOW } = channelModule;

/** Every test is bounded: a missing feature must fail, not hang. */
const T = { timeout: 10_000 };
/** The pty that pty tests ask for. */
const pty = (): ssh2.PseudoTtyOptions => ({ term: 'xterm', cols: 80, rows: 24 });

interface Setup {
  srv: TestServer;
  client: ssh2.Client;
}

/** Starts a server and connects an ssh2 client; both are closed after the test. */
async function setup(t: TestContext, options: ServerOptions, config: ssh2.ConnectConfig = {}): Promise<Setup> {
  const srv = await startServer(options);
  let client: ssh2.Client | undefined;
  t.after(async () => {
    client?.end();
    await srv.close();
  });
  client = await connect(srv.port, config);
  client.on('error', () => undefined);
  return { srv, client };
}

/** A promise with its resolve function outside. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A client channel whose output and exit are recorded from the moment it exists. */
interface Run {
  ch: ssh2.ClientChannel;
  /** Resolves when the channel closed. */
  done: Promise<ExecResult>;
  /** stdout received so far. */
  stdout(): string;
  /** The arguments of the channel's 'close' event (ssh2 passes the exit status or signal). */
  closeArgs: unknown[] | undefined;
}

/** Records a channel's output; call it synchronously when the channel is handed over. */
function track(ch: ssh2.ClientChannel): Run {
  const out: Buffer[] = [];
  const run: Run = {
    ch,
    done: collect(ch),
    stdout: () => Buffer.concat(out).toString(),
    closeArgs: undefined,
  };
  ch.on('data', (d: Buffer) => out.push(d));
  ch.on('close', (...args: unknown[]) => (run.closeArgs = args));
  return run;
}

/** Opens an exec channel with the ssh2 client API, tracked before any data can be missed. */
function startExec(client: ssh2.Client, command: string, opts: ssh2.ExecOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    client.exec(command, opts, (err, ch) => (err ? reject(err) : resolve(track(ch))));
  });
}

/** Opens a bare session channel (no request sent yet) and tracks it. */
async function startRaw(client: ssh2.Client): Promise<Run> {
  return track(await openChannel(client, 'session'));
}

/** Waits until stdout so far equals `text`. */
const stdoutIs = (run: Run, text: string): Promise<void> =>
  waitFor(() => run.stdout() === text, 2000, `stdout ${JSON.stringify(text)} (got ${JSON.stringify(run.stdout())})`);

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Writes `data` in chunks, waiting for 'drain' whenever write() returns false. */
async function pump(w: Writable, data: Buffer, chunk = 64 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!w.write(data.subarray(off, off + chunk))) await once(w, 'drain');
  }
}

/** Keeps a session open until its channel closes. */
const untilClosed = (s: Session): Promise<void> =>
  new Promise((resolve) => {
    if (s.signal.aborted) resolve();
    else s.signal.addEventListener('abort', () => resolve(), { once: true });
  });

describe('session output and exit status', () => {
  it('stdout bytes arrive exactly and the exit status is 0', T, async (t) => {
    const { client } = await setup(t, {
      handler: async (s) => {
        s.write('hello world\n');
        s.write(Buffer.from([0, 1, 2, 255]));
        await s.exit(0);
      },
    });
    const r = await exec(client, 'x');
    assert.deepEqual(r.stdout, Buffer.concat([Buffer.from('hello world\n'), Buffer.from([0, 1, 2, 255])]));
    assert.equal(r.stderr.length, 0);
    assert.equal(r.code, 0);
    assert.equal(r.signal, undefined);
  });

  it('stderr bytes arrive exactly on the extended-data stream', T, async (t) => {
    const { client } = await setup(t, {
      handler: async (s) => {
        s.stderr.write('error output\n');
        s.stderr.write(Buffer.from([0xde, 0xad]));
        await s.exit(0);
      },
    });
    const r = await exec(client, 'x');
    assert.deepEqual(r.stderr, Buffer.concat([Buffer.from('error output\n'), Buffer.from([0xde, 0xad])]));
    assert.equal(r.stdout.length, 0);
    assert.equal(r.code, 0);
  });

  it('echoes 1 MiB of stdin exactly, and writing and exit(7) still work after the for-await loop ended', T, async (t) => {
    const payload = randomBytes(1024 * 1024);
    let loopEnded = false;
    const { client } = await setup(t, {
      handler: async (s) => {
        for await (const c of s) s.write(c);
        loopEnded = true;
        assert.equal(s.destroyed, false);
        s.write('after-loop');
        await s.exit(7);
      },
    });
    const r = await exec(client, 'cat', { stdin: payload });
    assert.equal(loopEnded, true);
    assert.equal(r.stdout.length, payload.length + 'after-loop'.length);
    assert.equal(sha256(r.stdout.subarray(0, payload.length)), sha256(payload));
    assert.equal(r.stdout.subarray(payload.length).toString(), 'after-loop');
    assert.equal(r.code, 7);
  });

  it('stdin data and EOF sent right behind the exec request (before its reply) reach the handler', T, async (t) => {
    const { client } = await setup(t, {
      handler: async (s) => {
        const chunks: Buffer[] = [];
        for await (const c of s) chunks.push(c as Buffer);
        s.write(`got:${Buffer.concat(chunks).toString()}`);
      },
    });
    const run = await startRaw(client);
    const reply = channelRequest(client, run.ch, 'exec', true, new Wire().str('cat').buf());
    run.ch.write('early ');
    run.ch.end('bytes');
    assert.equal(await reply, true);
    const r = await run.done;
    assert.equal(r.stdout.toString(), 'got:early bytes');
    assert.equal(r.code, 0);
  });

  it('breaking out of a for-await loop over stdin does not destroy the session', T, async (t) => {
    const { client } = await setup(t, {
      handler: async (s) => {
        let first = '';
        for await (const c of s) {
          first = String(c);
          break;
        }
        assert.equal(s.destroyed, false);
        s.write(`first=${first};`);
        s.stderr.write('still here');
        await s.exit(7);
      },
    });
    const run = await startExec(client, 'x');
    run.ch.write('hello');
    const r = await run.done;
    assert.equal(r.stdout.toString(), 'first=hello;');
    assert.equal(r.stderr.toString(), 'still here');
    assert.equal(r.code, 7);
  });

  it('user is the name the client authenticated as', T, async (t) => {
    const { client } = await setup(t, { handler: (s) => void s.write(`user=${s.user}`) }, { username: 'alice-42' });
    const r = await exec(client, 'x');
    assert.equal(r.stdout.toString(), 'user=alice-42');
  });

  it('a handler that returns without exit() exits with status 0', T, async (t) => {
    const { client } = await setup(t, {
      handler: (s) => {
        s.write('done');
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.stdout.toString(), 'done');
    assert.equal(r.code, 0);
  });

  it('exit(0) sends status 0 and closes the channel while the handler is still running', T, async (t) => {
    let afterExit = false;
    const { client } = await setup(t, {
      handler: async (s) => {
        s.write('out');
        await s.exit(0);
        await untilClosed(s);
        afterExit = true;
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.stdout.toString(), 'out');
    assert.equal(r.code, 0);
    await waitFor(() => afterExit, 2000, 'handler to see the channel closed');
  });

  it('exit(1) gives the client exit code 1', T, async (t) => {
    const { client } = await setup(t, { handler: (s) => s.exit(1) });
    const r = await exec(client, 'x');
    assert.equal(r.code, 1);
  });

  it('a second exit() rejects with ERR_SESSION_EXITED and the first status stands', T, async (t) => {
    const second = deferred<unknown>();
    const concurrent = deferred<unknown>();
    const { client, srv } = await setup(t, {
      handler: async (s) => {
        const first = s.exit(3);
        // Called before the first one finished flushing.
        await s.exit(4).then(
          () => concurrent.resolve('resolved'),
          (err: unknown) => concurrent.resolve(err),
        );
        await first;
        await s.exit(5).then(
          () => second.resolve('resolved'),
          (err: unknown) => second.resolve(err),
        );
        await assert.rejects(s.exitSignal('TERM'), { code: 'ERR_SESSION_EXITED' });
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.code, 3);
    const e1 = (await concurrent.promise) as { code?: string };
    const e2 = (await second.promise) as { code?: string };
    assert.equal(e1.code, 'ERR_SESSION_EXITED');
    assert.equal(e2.code, 'ERR_SESSION_EXITED');
    assert.equal(srv.errors.length, 0);
  });

  it("exitSignal('TERM', false, 'msg') reaches the client as an exit signal", T, async (t) => {
    const { client } = await setup(t, { handler: (s) => s.exitSignal('TERM', false, 'terminated by test') });
    const run = await startExec(client, 'x');
    const r = await run.done;
    // ssh2 passes the exit signal to 'close' and puts "SIG" in front of the name it received
    // ("TERM" on the wire).
    assert.deepEqual(run.closeArgs, [null, 'SIGTERM', false, 'terminated by test']);
    assert.equal(r.code, null);
    assert.equal(r.signal, 'SIGTERM');
  });

  it('exitSignal sends signal names outside the RFC list (XCPU, name@domain) and a SIG prefix is dropped', T, async (t) => {
    const names = ['XCPU', 'timeout@example.com', 'SIGHUP'];
    let i = 0;
    const { client, srv } = await setup(t, { handler: (s) => s.exitSignal(names[i++]!, i === 1, `m${i}`) });
    const seen: unknown[] = [];
    for (let n = 0; n < names.length; n++) {
      const run = await startExec(client, 'x');
      await run.done;
      seen.push(run.closeArgs);
    }
    assert.deepEqual(seen, [
      [null, 'SIGXCPU', true, 'm1'],
      [null, 'SIGtimeout@example.com', false, 'm2'],
      [null, 'SIGHUP', false, 'm3'],
    ]);
    assert.deepEqual(srv.errors, []);
  });

  it("a handler that throws gives exit code 1 and the error goes to 'error' with err.context", T, async (t) => {
    const boom = new Error('handler boom');
    let seenCtx: Context | undefined;
    const { client, srv } = await setup(t, {
      handler: (s) => {
        seenCtx = s.context;
        s.write('partial');
        throw boom;
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.code, 1);
    assert.equal(r.stdout.toString(), 'partial');
    await waitFor(() => srv.errors.length > 0, 2000, "'error' event");
    assert.equal(srv.errors.length, 1);
    assert.equal(srv.errors[0], boom);
    assert.ok(seenCtx);
    assert.equal((srv.errors[0] as Error & { context?: Context }).context, seenCtx);
  });

  it('a handler that rejects asynchronously also gives exit code 1', T, async (t) => {
    const { client, srv } = await setup(t, {
      handler: async () => {
        await new Promise((r) => setImmediate(r));
        throw new Error('async boom');
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.code, 1);
    await waitFor(() => srv.errors.length === 1, 2000, "'error' event");
    assert.equal(srv.errors[0]!.message, 'async boom');
  });

  it('with no handler, shell and exec are refused and the connection keeps working', T, async (t) => {
    const { client, srv } = await setup(t, {});
    await assert.rejects(startExec(client, 'ls'), /Unable to exec/);
    await assert.rejects(
      new Promise((resolve, reject) => client.shell((err, ch) => (err ? reject(err) : resolve(ch)))),
      /Unable to open shell/,
    );
    // Refused again on a fresh channel: the connection is alive.
    await assert.rejects(startExec(client, 'ls'), /Unable to exec/);
    assert.deepEqual(srv.errors, []);
  });
});

describe('session metadata', () => {
  it("rawCommand is the exec command as sent and command splits it (ls -la 'a b')", T, async (t) => {
    const { client } = await setup(t, {
      handler: (s) => void s.write(JSON.stringify({ raw: s.rawCommand, command: s.command, sub: s.subsystem })),
    });
    const r = await exec(client, "ls  -la 'a b'");
    assert.deepEqual(JSON.parse(r.stdout.toString()), { raw: "ls  -la 'a b'", command: ['ls', '-la', 'a b'], sub: '' });
  });

  it('a shell has rawCommand "" and command []', T, async (t) => {
    const { client } = await setup(t, {
      handler: (s) => void s.write(JSON.stringify({ raw: s.rawCommand, command: s.command })),
    });
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.shell(false, (err, c) => (err ? reject(err) : resolve(c))),
    );
    ch.end();
    const r = await collect(ch);
    assert.deepEqual(JSON.parse(r.stdout.toString()), { raw: '', command: [] });
    assert.equal(r.code, 0);
  });

  it('environ holds the env requests as "K=V" in arrival order', T, async (t) => {
    const { client } = await setup(t, { handler: (s) => void s.write(JSON.stringify(s.environ)) });
    const r = await exec(client, 'env', { env: { ZED: 'last?', ALPHA: 'a b=c', EMPTY: '' } });
    assert.deepEqual(JSON.parse(r.stdout.toString()), ['ZED=last?', 'ALPHA=a b=c', 'EMPTY=']);
  });

  it('environ is empty without env requests', T, async (t) => {
    const { client } = await setup(t, { handler: (s) => void s.write(JSON.stringify(s.environ)) });
    const r = await exec(client, 'env');
    assert.equal(r.stdout.toString(), '[]');
  });

  it('ctx values set in passwordHandler are visible through s.context.get()', T, async (t) => {
    const key = Symbol('role');
    let authCtx: Context | undefined;
    const { client } = await setup(
      t,
      {
        passwordHandler: (ctx, password) => {
          authCtx = ctx;
          ctx.set('role', 'admin');
          ctx.set(key, { level: 7 });
          return password === 'secret';
        },
        handler: (s) => {
          s.write(
            JSON.stringify({
              role: s.context.get('role'),
              sym: s.context.get(key),
              missing: s.context.get('nope') ?? null,
              same: s.context === authCtx,
            }),
          );
        },
      },
      { password: 'secret' },
    );
    const r = await exec(client, 'x');
    assert.deepEqual(JSON.parse(r.stdout.toString()), { role: 'admin', sym: { level: 7 }, missing: null, same: true });
  });

  it('s.permissions is a copy of what the auth handler granted', T, async (t) => {
    const results: unknown[] = [];
    const { client } = await setup(
      t,
      {
        passwordHandler: (ctx) => {
          ctx.permissions.criticalOptions['force-command'] = 'date';
          ctx.permissions.extensions['permit-pty'] = '';
          return true;
        },
        handler: (s) => {
          const p = s.permissions;
          results.push({
            perms: structuredClone(p),
            sameObject: p === s.context.permissions,
            sameInner: p.extensions === s.context.permissions.extensions,
          });
          p.extensions['mutated'] = 'yes';
          p.criticalOptions['force-command'] = 'rm';
          results.push(structuredClone(s.context.permissions));
        },
      },
      { password: 'pw' },
    );
    assert.equal((await exec(client, 'one')).code, 0);
    assert.equal((await exec(client, 'two')).code, 0);
    const granted = { criticalOptions: { 'force-command': 'date' }, extensions: { 'permit-pty': '' } };
    assert.deepEqual(results, [
      { perms: granted, sameObject: false, sameInner: false },
      granted,
      // The second session sees what auth granted, not what the first session changed.
      { perms: granted, sameObject: false, sameInner: false },
      granted,
    ]);
  });
});

describe('session pty', () => {
  it('term, window size, pixel sizes and modes come from the pty-req', T, async (t) => {
    const seen = deferred<unknown>();
    const { client } = await setup(t, {
      handler: (s) => {
        seen.resolve(s.pty ? { term: s.pty.term, window: { ...s.pty.window }, modes: { ...s.pty.modes } } : 'no pty');
      },
    });
    const { ch, done } = await startRaw(client);
    const modes = encodeTerminalModes({ VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 });
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm-256color', 120, 40, modes, [960, 640])), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    const r = await done;
    assert.equal(r.code, 0);
    assert.deepEqual(await seen.promise, {
      term: 'xterm-256color',
      window: { width: 120, height: 40, widthPixels: 960, heightPixels: 640 },
      modes: { VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 },
    });
  });

  it('without a pty-req s.pty is undefined', T, async (t) => {
    const { client } = await setup(t, { handler: (s) => void s.write(String(s.pty)) });
    assert.equal((await exec(client, 'x')).stdout.toString(), 'undefined');
  });

  it('under a pty, \\n becomes \\r\\n on stdout and stderr and \\r\\n stays as is', T, async (t) => {
    const { client } = await setup(t, {
      handler: (s) => {
        s.write('a\nb\r\nc\n');
        s.write('\r');
        s.write('\nd\n');
        s.stderr.write('e\nf\r\n');
      },
    });
    const r = await exec(client, 'x', { pty: { term: 'xterm', cols: 80, rows: 24 } });
    assert.equal(r.stdout.toString(), 'a\r\nb\r\nc\r\n\r\nd\r\n');
    assert.equal(r.stderr.toString(), 'e\r\nf\r\n');
    assert.equal(r.code, 0);
  });

  for (const size of [7001, 100_003]) {
  it(`under a pty, 3.5 MB on stdout and on stderr of each of two sessions at once arrive converted byte for byte through window stalls (${size}-byte writes)`, { timeout: 60_000 }, async (t) => {
    // The conversion's output is a view of memory shared by every session; what ssh2 keeps
    // while it waits for window space must be a copy, or another conversion overwrites it.
    const lines = (tag: string): Buffer => Buffer.from(Array.from({ length: 40_000 }, (_, i) => `${tag} ${i} ${'x'.repeat(i % 150)}\n`).join(''));
    const { client } = await setup(t, {
      handler: async (s) => {
        const send = async (w: Writable, data: Buffer): Promise<void> => {
          for (let p = 0; p < data.length; p += size) {
            if (!w.write(data.subarray(p, p + size))) await once(w, 'drain');
          }
        };
        await Promise.all([send(s, lines(`out-${s.command[0]}`)), send(s.stderr, lines(`err-${s.command[0]}`))]);
        await s.exit(0);
      },
    });
    const [a, b] = await Promise.all([exec(client, 'a', { pty: pty() }), exec(client, 'b', { pty: pty() })]);
    for (const [r, tag] of [[a, 'a'], [b, 'b']] as const) {
      assert.equal(r.code, 0);
      const crlf = (buf: Buffer): string => buf.toString().replaceAll('\n', '\r\n');
      assert.ok(r.stdout.toString() === crlf(lines(`out-${tag}`)), `stdout of ${tag} differs (${r.stdout.length} bytes)`);
      assert.ok(r.stderr.toString() === crlf(lines(`err-${tag}`)), `stderr of ${tag} differs (${r.stderr.length} bytes)`);
    }
  });
  }

  it('under a pty, large writes go out in whole packets (the converted rest is held until the next write)', T, async (t) => {
    const line = Buffer.from(`${'y'.repeat(79)}\n`);
    const chunk = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 80 KiB -> 81 KiB converted
    const { client } = await setup(t, {
      handler: async (s) => {
        for (let i = 0; i < 8; i++) s.write(chunk);
        await s.exit(0);
      },
    });
    const sizes: number[] = [];
    // Listeners go on in exec's callback: ssh2 may deliver the first data in the same read.
    const ch = await new Promise<ssh2.ClientChannel>((res, rej) =>
      client.exec('x', { pty: pty() }, (err, c) => (err ? rej(err) : res(c.on('data', (d: Buffer) => sizes.push(d.length))))),
    );
    await once(ch, 'close');
    assert.equal(sizes.reduce((a, b) => a + b, 0), 8 * 1024 * 81);
    // 663 552 bytes: 20 full 32 KiB packets and one of 8 192; without the hold-back each
    // write would end in a short packet (8 of them).
    assert.deepEqual(sizes.slice(0, -1).filter((n) => n !== 32768), [], `packet sizes ${sizes.join(',')}`);
  });

  it('under a pty, a held-back rest goes out without a further write, and before later stderr output', T, async (t) => {
    const big = Buffer.from(`${'z'.repeat(99)}\n`.repeat(500)); // 50 000 bytes -> 50 500, more than a packet
    const gotAll = deferred();
    const { client } = await setup(t, {
      handler: async (s) => {
        s.write(big);
        await gotAll.promise; // nothing else is written until the client has every byte
        s.stderr.write('E');
        s.write(big);
        s.stderr.write('F');
        await s.exit(0);
      },
    });
    const events: string[] = [];
    let stdout = 0;
    const ch = await new Promise<ssh2.ClientChannel>((res, rej) =>
      client.exec('x', { pty: pty() }, (err, c) => {
        if (err) return rej(err);
        c.on('data', (d: Buffer) => {
          stdout += d.length;
          events.push(`out:${stdout}`);
          if (stdout === 50_500) gotAll.resolve();
        });
        c.stderr.on('data', (d: Buffer) => events.push(`err:${d.toString()}`));
        res(c);
      }),
    );
    await once(ch, 'close');
    assert.equal(stdout, 101_000);
    assert.equal(events.at(-1), 'err:F', `stdout's rest went out before the stderr write that followed it: ${events.join(' ')}`);
    assert.ok(events.indexOf('err:E') > events.indexOf('out:50500'));
  });

  it('without a pty, output is not translated', T, async (t) => {
    const { client } = await setup(t, {
      handler: (s) => {
        s.write('a\nb\r\nc\n');
        s.stderr.write('e\nf\r\n');
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.stdout.toString(), 'a\nb\r\nc\n');
    assert.equal(r.stderr.toString(), 'e\nf\r\n');
  });

  it('windowChanges() yields the initial window, then each accepted change, and ends when the client closes the channel', T, async (t) => {
    const seen: Window[] = [];
    const events: Window[] = [];
    let ended = false;
    let session: Session | undefined;
    const { client } = await setup(t, {
      handler: async (s) => {
        session = s;
        s.on('window-change', (w) => events.push(w));
        const loop = (async () => {
          for await (const w of s.windowChanges()) seen.push(w);
        })();
        s.write('ready');
        await loop;
        ended = true;
      },
    });
    const run = await startRaw(client);
    const { ch } = run;
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('vt100', 80, 24, undefined, [640, 480])), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await stdoutIs(run, 'ready');
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(100, 30, [1000, 600])), true);
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(132, 43)), true);
    // A refused change (0 rows) is not yielded.
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(50, 0)), false);
    await waitFor(() => seen.length === 3, 2000, 'three windows');
    assert.equal(ended, false);
    const closed = once(ch, 'close');
    ch.close();
    await closed;
    await waitFor(() => ended, 2000, 'windowChanges() to end');
    assert.deepEqual(seen, [
      { width: 80, height: 24, widthPixels: 640, heightPixels: 480 },
      { width: 100, height: 30, widthPixels: 1000, heightPixels: 600 },
      { width: 132, height: 43, widthPixels: 0, heightPixels: 0 },
    ]);
    assert.deepEqual(events, seen.slice(1));
    assert.deepEqual(session!.pty!.window, { width: 132, height: 43, widthPixels: 0, heightPixels: 0 });
  });

  it("'window-change' is emitted for a window-change sent without want-reply", T, async (t) => {
    const got = deferred<Window>();
    const { client } = await setup(t, {
      handler: async (s) => {
        s.once('window-change', (w) => got.resolve(w));
        s.write('ready');
        await untilClosed(s);
      },
    });
    const run = await startExec(client, 'x', { pty: { term: 'xterm', cols: 80, rows: 24 } });
    const { ch } = run;
    await stdoutIs(run, 'ready');
    ch.setWindow(50, 150, 500, 1500);
    assert.deepEqual(await got.promise, { width: 150, height: 50, widthPixels: 1500, heightPixels: 500 });
    ch.close();
  });
});

describe('session signals and break', () => {
  it('signals sent before the handler attached its listener are delivered in order (INT, KILL) when it attaches', T, async (t) => {
    const gate = deferred();
    const got: string[] = [];
    const { client } = await setup(t, {
      handler: async (s) => {
        await gate.promise;
        s.on('signal', (name) => got.push(name));
        await untilClosed(s);
      },
    });
    const { ch } = await startExec(client, 'sleep');
    ch.signal('INT');
    ch.signal('SIGKILL');
    // Requests are handled in order: once this one is answered both signals were buffered.
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    assert.deepEqual(got, []);
    gate.resolve();
    await waitFor(() => got.length === 2, 2000, 'buffered signals');
    assert.deepEqual(got, ['INT', 'KILL']);
    // Once attached, a signal is delivered as it arrives.
    ch.signal('TERM');
    await waitFor(() => got.length === 3, 2000, 'live signal');
    assert.deepEqual(got, ['INT', 'KILL', 'TERM']);
    ch.close();
  });

  it('at most 128 signals are buffered while no listener is attached', T, async (t) => {
    const gate = deferred();
    const got: string[] = [];
    const { client } = await setup(t, {
      handler: async (s) => {
        await gate.promise;
        s.on('signal', (name) => got.push(name));
        await untilClosed(s);
      },
    });
    const { ch } = await startExec(client, 'sleep');
    for (let i = 0; i < 200; i++) await channelRequest(client, ch, 'signal', false, new Wire().str(`X${i}`).buf());
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    gate.resolve();
    await waitFor(() => got.length >= 128, 2000, 'buffered signals');
    // Nothing more arrives: the probe below is answered after any pending delivery.
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    assert.equal(got.length, 128);
    // A contiguous run in arrival order (the first or the last 128).
    const start = Number(got[0]!.slice(1));
    assert.ok(start === 0 || start === 72, `unexpected first kept signal ${got[0]}`);
    assert.deepEqual(
      got,
      Array.from({ length: 128 }, (_, i) => `X${start + i}`),
    );
    ch.close();
  });

  it("'break' with a listener is answered true and the listener gets the length", T, async (t) => {
    const lengths: number[] = [];
    const { client } = await setup(t, {
      handler: async (s) => {
        s.on('break', (ms) => lengths.push(ms));
        s.write('ready');
        await untilClosed(s);
      },
    });
    const run = await startExec(client, 'x');
    const { ch } = run;
    await stdoutIs(run, 'ready');
    assert.equal(await channelRequest(client, ch, 'break', true, new Wire().u32(750).buf()), true);
    assert.deepEqual(lengths, [750]);
    assert.equal(await channelRequest(client, ch, 'break', true, new Wire().u32(0).buf()), true);
    assert.deepEqual(lengths, [750, 0]);
    ch.close();
  });

  it("'break' without a listener is answered false and the session still exits 0", T, async (t) => {
    const gate = deferred();
    const { client } = await setup(t, {
      handler: async (s) => {
        s.write('ready');
        await gate.promise;
      },
    });
    const { ch, done } = await startExec(client, 'x');
    assert.equal(await channelRequest(client, ch, 'break', true, new Wire().u32(500).buf()), false);
    gate.resolve();
    const r = await done;
    assert.equal(r.stdout.toString(), 'ready');
    assert.equal(r.code, 0);
  });
});

describe('session requests to the client and lifetime', () => {
  it('sendRequest resolves with the client answer (ssh2 refuses unknown requests) and true without want-reply', T, async (t) => {
    const answers = deferred<unknown[]>();
    const { client } = await setup(t, {
      handler: async (s) => {
        const withReply = await s.sendRequest('foo@example.com', true, Buffer.from('data'));
        const noReply = await s.sendRequest('bar@example.com', false);
        answers.resolve([withReply, noReply]);
      },
    });
    const r = await exec(client, 'x');
    assert.deepEqual(await answers.promise, [false, true]);
    assert.equal(r.code, 0);
  });

  it('sendRequest rejects with ERR_CHANNEL_CLOSED once the channel is closed', T, async (t) => {
    const result = deferred<unknown>();
    const { client } = await setup(t, {
      handler: async (s) => {
        await s.exit(0);
        await untilClosed(s);
        await s.sendRequest('foo@example.com', true).then(
          (v) => result.resolve(v),
          (err: unknown) => result.resolve(err),
        );
      },
    });
    const r = await exec(client, 'x');
    assert.equal(r.code, 0);
    assert.equal(((await result.promise) as { code?: string }).code, 'ERR_CHANNEL_CLOSED');
  });

  it('session.signal aborts when the client closes the channel', T, async (t) => {
    let session: Session | undefined;
    let abortedAt = -1;
    const { client } = await setup(t, {
      handler: async (s) => {
        session = s;
        s.signal.addEventListener('abort', () => (abortedAt = Date.now()));
        s.write('ready');
        await untilClosed(s);
      },
    });
    const run = await startExec(client, 'x');
    const { ch } = run;
    await stdoutIs(run, 'ready');
    assert.equal(session!.signal.aborted, false);
    ch.close();
    await waitFor(() => abortedAt > 0, 2000, 'session.signal to abort');
    assert.equal(session!.signal.aborted, true);
    assert.equal((session!.signal.reason as { code?: string }).code, 'ERR_CHANNEL_CLOSED');
  });
});

describe('session close with unread stdin', () => {
  for (const how of ['the client closes the channel', 'the connection ends'] as const) {
    it(`session.signal aborts when ${how} while stdin is not read, and the stdin sent is still readable`, T, async (t) => {
      const data = randomBytes(256 * 1024);
      let session: Session | undefined;
      let aborted = false;
      const read = deferred<Buffer>();
      const { client } = await setup(t, {
        handler: async (s) => {
          session = s;
          await untilClosed(s);
          aborted = true;
          const chunks: Buffer[] = [];
          for await (const c of s) chunks.push(c as Buffer);
          read.resolve(Buffer.concat(chunks));
        },
      });
      const { ch } = await startExec(client, 'x');
      await waitFor(() => session !== undefined, 2000, 'handler');
      await new Promise<void>((resolve, reject) => ch.write(data, (err) => (err ? reject(err) : resolve())));
      // Everything sent sits unread in the session's buffer.
      await waitFor(() => session!.readableLength >= data.length, 2000, 'stdin to back up');
      if (how === 'the client closes the channel') ch.close();
      else client.end();
      await waitFor(() => aborted, 3000, 'session.signal to abort');
      const got = await read.promise;
      assert.equal(got.length, data.length);
      assert.equal(sha256(got), sha256(data));
    });
  }
});

describe('session flow control', () => {
  it('8 MiB on stdout and 8 MiB on stderr written concurrently both arrive completely', T, async (t) => {
    const out = randomBytes(8 * 1024 * 1024);
    const err = randomBytes(8 * 1024 * 1024);
    const { client } = await setup(t, {
      handler: async (s) => {
        await Promise.all([pump(s, out), pump(s.stderr, err)]);
        await s.exit(0);
      },
    });
    const r: ExecResult = await exec(client, 'x');
    assert.equal(r.stdout.length, out.length);
    assert.equal(r.stderr.length, err.length);
    assert.equal(sha256(r.stdout), sha256(out));
    assert.equal(sha256(r.stderr), sha256(err));
    assert.equal(r.code, 0);
  });

  it('a client that stops reading holds the writer back, and gets everything once it reads again', T, async (t) => {
    const data = randomBytes(3 * MAX_WINDOW);
    let finished = false;
    const { client } = await setup(t, {
      handler: async (s) => {
        await pump(s, data, 32 * 1024);
        finished = true;
        await s.exit(0);
      },
    });
    const { ch, closed } = await new Promise<{ ch: ssh2.ClientChannel; closed: Promise<unknown[]> }>((resolve, reject) =>
      client.exec('x', (err, c) => {
        if (err) return reject(err);
        // Not reading: nothing consumes what arrives, so the client stops adjusting its window.
        c.pause();
        resolve({ ch: c, closed: once(c, 'close') });
      }),
    );
    // ssh2's client keeps adjusting its window until its stream buffer (MAX_WINDOW) is full,
    // then stops: the window it granted runs out and the server must wait.
    const incoming = (ch as unknown as { incoming: { window: number } }).incoming;
    await waitFor(() => incoming.window === 0, 5000, 'client window to be used up');
    assert.equal(finished, false);
    assert.ok(ch.readableLength >= MAX_WINDOW, `client buffered only ${ch.readableLength} bytes`);
    assert.ok(ch.readableLength <= 2 * MAX_WINDOW, `client buffered ${ch.readableLength} bytes, more than it granted`);
    assert.ok(ch.readableLength < data.length);
    const chunks: Buffer[] = [];
    ch.on('data', (d: Buffer) => chunks.push(d));
    ch.resume();
    const [code] = await closed;
    const got = Buffer.concat(chunks);
    assert.equal(got.length, data.length);
    assert.equal(sha256(got), sha256(data));
    assert.equal(code, 0);
    assert.equal(finished, true);
  });
});
