/**
 * The ready-made middleware: logging, activeTerm, accessControl, recover, elapsed, comment,
 * and the rate limiter (before the handshake and per session).
 */
import { connect, exec, ssh, startServer, waitFor, type TestServer } from '../helpers/harness.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessControl,
  activeTerm,
  comment,
  elapsed,
  GlidesshError,
  InvalidOptionError,
  logging,
  rateLimiter,
  recover,
  type Handler,
  type Logger,
  type Middleware,
  type ServerOptions,
} from '../../src/index.js';

async function withServer(
  options: ServerOptions,
  middleware: Middleware[],
  handler: Handler,
  fn: (s: TestServer) => Promise<void>,
): Promise<void> {
  const s = await startServer(options);
  s.server.use(...middleware);
  s.server.handle(handler);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** A logger that records its calls. */
function recorder(): Logger & { calls: Array<{ level: string; args: unknown[] }> } {
  const calls: Array<{ level: string; args: unknown[] }> = [];
  return {
    calls,
    info: (...args) => calls.push({ level: 'info', args }),
    error: (...args) => calls.push({ level: 'error', args }),
  };
}

describe('logging', () => {
  it('logs connect (user, address, command, term, window, client) and disconnect (duration) as fields + message', async () => {
    const log = recorder();
    await withServer({}, [logging(log)], (s) => void s.write('ok'), async ({ port }) => {
      const client = await connect(port, { username: 'ada' });
      const r = await exec(client, 'build --fast', { pty: { term: 'xterm-256color', cols: 90, rows: 20 } });
      client.end();
      assert.equal(r.code, 0);
      await waitFor(() => log.calls.length === 2, 5000, 'two log lines');
    });
    const [connectCall, disconnectCall] = log.calls;
    assert.equal(connectCall!.level, 'info');
    const fields = connectCall!.args[0] as Record<string, unknown>;
    assert.equal(fields.event, 'connect');
    assert.equal(fields.user, 'ada');
    assert.equal(fields.remoteAddress, '127.0.0.1');
    assert.equal(fields.command, 'build --fast');
    assert.equal(fields.term, 'xterm-256color');
    assert.equal(fields.window, '90x20');
    assert.match(String(fields.clientVersion), /^SSH-2\.0-/);
    assert.match(String(connectCall!.args[1]), /^ada connect 127\.0\.0\.1:\d+ command="build --fast" term=xterm-256color window=90x20 client=SSH-2\.0-/);
    const end = disconnectCall!.args[0] as Record<string, unknown>;
    assert.equal(end.event, 'disconnect');
    assert.equal(typeof end.durationMs, 'number');
    assert.match(String(disconnectCall!.args[1]), /^ada disconnect 127\.0\.0\.1:\d+ after \d+\.\d{3}s$/);
  });

  it('with console (or fields: false) logs the message alone; a throwing handler is logged with error and still exits 1', async () => {
    const log = recorder();
    await withServer({}, [logging(log, { fields: false })], () => {
      throw new Error('kaput');
    }, async ({ port, errors }) => {
      const client = await connect(port);
      const r = await exec(client, 'x');
      client.end();
      assert.equal(r.code, 1);
      await waitFor(() => log.calls.length === 2 && errors.length === 1, 5000, 'logs and the reported error');
    });
    assert.equal(log.calls[0]!.args.length, 1);
    assert.match(String(log.calls[0]!.args[0]), /^testuser connect 127\.0\.0\.1:\d+ command="x" client=/);
    assert.equal(log.calls[1]!.level, 'error');
    assert.match(String(log.calls[1]!.args[0]), /^testuser failed 127\.0\.0\.1:\d+ after \d+\.\d{3}s: kaput$/);
  });

  it('a logger that throws does not break the session', async () => {
    const broken: Logger = {
      info: () => {
        throw new Error('disk full');
      },
      error: () => undefined,
    };
    await withServer({}, [logging(broken)], (s) => void s.write('fine'), async ({ port }) => {
      const client = await connect(port);
      const r = await exec(client, 'x');
      client.end();
      assert.equal(r.code, 0);
      assert.equal(r.stdout.toString(), 'fine');
    });
  });
});

describe('activeTerm', () => {
  it('refuses a session without a pty with "Requires an active PTY" and status 1; the handler never runs', async () => {
    let ran = 0;
    await withServer({}, [activeTerm()], (s) => void (ran++, s.write('app')), async ({ port }) => {
      const client = await connect(port);
      const refused = await exec(client, 'x');
      assert.equal(refused.code, 1);
      assert.equal(refused.stderr.toString(), 'Requires an active PTY\n');
      assert.equal(ran, 0);
      const ok = await exec(client, 'x', { pty: true });
      assert.equal(ok.code, 0);
      assert.equal(ok.stdout.toString(), 'app');
      client.end();
    });
  });
});

describe('accessControl', () => {
  it('runs listed commands and shells; any other command gets "Command is not allowed: <name>" and status 1', async () => {
    await withServer({}, [accessControl(['status', 'version'])], (s) => void s.write(`ran ${s.command.join(' ')}`), async ({ port }) => {
      const client = await connect(port);
      assert.equal((await exec(client, 'status --json')).stdout.toString(), 'ran status --json');
      const denied = await exec(client, "rm -rf '/'");
      assert.equal(denied.code, 1);
      assert.equal(denied.stderr.toString(), 'Command is not allowed: rm\n');
      assert.equal(denied.stdout.toString(), '');
      // "statusx" is not "status": the match is exact.
      assert.equal((await exec(client, 'statusx')).code, 1);
      client.end();
    });
    await withServer({}, [accessControl([])], (s) => void s.write('shell'), async ({ port }) => {
      const r = await ssh(port, [], { input: '' });
      assert.equal(r.code, 0);
      assert.equal(r.stdout.toString(), 'shell');
    });
  });
});

describe('recover', () => {
  it('turns a throw (sync or async) into exit status 1 with a message on stderr, and reports it with its context', async () => {
    const seen: string[] = [];
    const outer: Middleware = (next) => async (s) => {
      await next(s); // would throw without recover
      seen.push('outer saw no throw');
    };
    let n = 0;
    await withServer({}, [outer, recover()], (s) => {
      if (n++ === 0) throw new Error('sync boom');
      return Promise.reject(new Error('async boom'));
    }, async ({ port, errors }) => {
      const client = await connect(port);
      for (const _ of [1, 2]) {
        const r = await exec(client, 'x');
        assert.equal(r.code, 1);
        assert.equal(r.stderr.toString(), 'internal error\n');
      }
      client.end();
      await waitFor(() => errors.length === 2, 5000, 'two reported errors');
      assert.deepEqual(errors.map((e) => e.message), ['sync boom', 'async boom']);
      assert.equal((errors[0] as Error & { context?: { user: string } }).context?.user, 'testuser');
    });
    assert.deepEqual(seen, ['outer saw no throw', 'outer saw no throw']);
  });

  it('takes a message function and an onError hook', async () => {
    const hooked: unknown[] = [];
    const mw = recover({ message: (err) => `error: ${(err as Error).message}`, onError: (err) => hooked.push(err) });
    await withServer({}, [mw], () => {
      throw new GlidesshError('ERR_HOOK', 'nope');
    }, async ({ port, errors }) => {
      const client = await connect(port);
      const r = await exec(client, 'x', { pty: true });
      client.end();
      assert.equal(r.code, 1);
      assert.equal(r.stdout.toString() + r.stderr.toString(), 'error: nope\r\n');
      assert.equal(hooked.length, 1);
      assert.deepEqual(errors, []);
    });
  });
});

describe('elapsed and comment', () => {
  it('write their lines after the handler returns, and before an exit() the handler makes itself', async () => {
    let n = 0;
    await withServer({}, [elapsed(), comment('Thanks for playing!')], async (s) => {
      s.write('game over\n');
      if (n++ === 1) await s.exit(3);
    }, async ({ port }) => {
      const client = await connect(port);
      const returned = await exec(client, 'x');
      assert.equal(returned.code, 0);
      assert.match(returned.stdout.toString(), /^game over\nThanks for playing!\nelapsed time: \d+\.\d{3}s\n$/);
      const exited = await exec(client, 'x');
      assert.equal(exited.code, 3);
      assert.match(exited.stdout.toString(), /^game over\nThanks for playing!\nelapsed time: \d+\.\d{3}s\n$/);
      client.end();
    });
  });

  it('elapsed takes a format, and its line is written even when the handler throws', async () => {
    await withServer({}, [elapsed((ms) => `took ${ms >= 0 ? 'some' : 'negative'} time\n`)], () => {
      throw new Error('x');
    }, async ({ port }) => {
      const client = await connect(port);
      const r = await exec(client, 'x');
      client.end();
      assert.equal(r.code, 1);
      assert.equal(r.stdout.toString(), 'took some time\n');
    });
  });
});

describe('rateLimiter', () => {
  it('is a token bucket per key: burst, then `rate` per second', () => {
    let now = 0;
    const limiter = rateLimiter({ rate: 2, burst: 3, now: () => now });
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.allow('a')), [true, true, true, false]);
    assert.equal(limiter.allow('b'), true, 'another source has its own bucket');
    now += 499;
    assert.equal(limiter.allow('a'), false, '0.998 tokens');
    now += 1;
    assert.equal(limiter.allow('a'), true, 'one token after 0.5 s at 2/s');
    now += 60_000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.allow('a')), [true, true, true, false], 'refills to the burst, no more');
  });

  it('keeps at most maxEntries sources, forgetting the least recently seen', () => {
    const limiter = rateLimiter({ rate: 0, burst: 1, maxEntries: 2, now: () => 0 });
    assert.equal(limiter.allow('a'), true);
    assert.equal(limiter.allow('b'), true);
    assert.equal(limiter.allow('a'), false, 'a is now the most recent');
    assert.equal(limiter.allow('c'), true, 'c evicts b');
    assert.equal(limiter.size, 2);
    assert.equal(limiter.allow('a'), false, 'a was kept');
    assert.equal(limiter.allow('b'), true, 'b was forgotten: a full bucket again');
    for (let i = 0; i < 10_000; i++) limiter.allow(`k${i}`);
    assert.equal(limiter.size, 2);
  });

  it('validates its options', () => {
    assert.throws(() => rateLimiter({ rate: -1, burst: 1 }), InvalidOptionError);
    assert.throws(() => rateLimiter({ rate: 1, burst: 0 }), InvalidOptionError);
    assert.throws(() => rateLimiter({ rate: 1, burst: 1, maxEntries: 0 }), InvalidOptionError);
    assert.throws(() => rateLimiter({ rate: Number.NaN, burst: 1 }), /rate/);
  });

  it('as connCallback refuses before the handshake: a clean close OpenSSH reports at once, no SSH work done', async () => {
    const limiter = rateLimiter({ rate: 0, burst: 2 });
    const failed: Error[] = [];
    let connections = 0;
    let auths = 0;
    await withServer(
      {
        connCallback: limiter.connCallback,
        connectionFailedCallback: (_socket, err) => failed.push(err),
        passwordHandler: () => (auths++, true),
      },
      [],
      (s) => void s.write('in'),
      async ({ server, port }) => {
        server.on('connection', () => connections++);
        for (const _ of [1, 2]) {
          const c = await connect(port, { password: 'x' });
          c.end();
        }
        const started = Date.now();
        const r = await ssh(port, ['x']);
        assert.equal(r.code, 255);
        assert.match(r.stderr.toString(), /Connection closed by remote host/);
        assert.ok(Date.now() - started < 3000, 'no hang');
        await assert.rejects(connect(port, { password: 'x' }));
        await waitFor(() => failed.length === 2, 5000, 'two refusals reported');
      },
    );
    assert.equal(connections, 2, 'refused clients never got to the SSH handshake');
    assert.equal(auths, 2);
    assert.deepEqual(failed.map((e) => (e as GlidesshError).code), ['ERR_CONNECTION_DROPPED', 'ERR_CONNECTION_DROPPED']);
  });

  it('as middleware refuses sessions over the rate with a message and status 1', async () => {
    const limiter = rateLimiter({ rate: 0, burst: 1 });
    await withServer({}, [limiter.middleware], (s) => void s.write('in'), async ({ port }) => {
      const client = await connect(port);
      assert.equal((await exec(client, 'x')).stdout.toString(), 'in');
      const refused = await exec(client, 'x');
      assert.equal(refused.code, 1);
      assert.equal(refused.stderr.toString(), 'rate limit exceeded, please try again later\n');
      client.end();
    });
  });
});
