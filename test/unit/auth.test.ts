/**
 * Authentication: methods offered, password, public key with real and forged signatures,
 * fresh state per attempt (CVE-2024-45337), maxAuthTries, keyboard-interactive, failing hooks
 * and the handshake timeout.
 */
import '../helpers/harness.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import { closedAfterEach, delay, exec, waitFor } from '../helpers/harness.js';
import { parseAuthorizedKey, type Context, type Permissions, type PublicKey, type ServerOptions } from '../../src/index.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

// ---------------------------------------------------------------- keys

const dir = mkdtempSync(join(tmpdir(), 'glidessh-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface ClientKey {
  name: string;
  priv: string;
  pubLine: string;
  /** `ssh-keygen -lf` fingerprint. */
  fingerprint: string;
  key: PublicKey;
  parsed: ssh2.ParsedKey;
}

function keygen(name: string, args: string[]): ClientKey {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `${name}@test`, '-f', path]);
  const pubLine = readFileSync(`${path}.pub`, 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  const priv = readFileSync(path, 'utf8');
  const parsed = ssh2.utils.parseKey(priv);
  if (parsed instanceof Error) throw parsed;
  return { name, priv, pubLine, fingerprint, key: parseAuthorizedKey(pubLine).key, parsed: parsed as ssh2.ParsedKey };
}

const keys = {
  ed25519: keygen('ed25519', ['-t', 'ed25519']),
  ed25519b: keygen('ed25519b', ['-t', 'ed25519']),
  p256: keygen('p256', ['-t', 'ecdsa', '-b', '256']),
  p256b: keygen('p256b', ['-t', 'ecdsa', '-b', '256']),
  p384: keygen('p384', ['-t', 'ecdsa', '-b', '384']),
  p521: keygen('p521', ['-t', 'ecdsa', '-b', '521']),
  rsa: keygen('rsa', ['-t', 'rsa', '-b', '2048']),
};

// ---------------------------------------------------------------- client helpers

/** Every test is bounded, so a regression fails instead of hanging the run. */
const test = (name: string, fn: () => Promise<void>): void => {
  nodeTest(name, { timeout: 5000 }, fn);
};

/** Clients and servers closed after each test, even one that timed out. */
const { start, clients: openClients } = closedAfterEach();

interface Login {
  ok: boolean;
  client: ssh2.Client;
  errors: Array<Error & { level?: string; code?: unknown }>;
}

/**
 * Connects an ssh2 client and resolves once it is authenticated (`ok`) or closed without
 * being authenticated. Every client 'error' is recorded, never thrown.
 */
function login(port: number, config: ssh2.ConnectConfig = {}, setup?: (c: ssh2.Client) => void): Promise<Login> {
  const client = new ssh2.Client();
  openClients.add(client);
  client.once('close', () => openClients.delete(client));
  const errors: Login['errors'] = [];
  return new Promise((resolve) => {
    client.on('error', (err) => errors.push(err));
    client.once('ready', () => resolve({ ok: true, client, errors }));
    client.once('close', () => resolve({ ok: false, client, errors }));
    client.connect({ host: '127.0.0.1', port, username: 'testuser', readyTimeout: 5000, ...config });
    setup?.(client);
  });
}

/** Ends the client and waits for its socket to close. */
function end(client: ssh2.Client): Promise<void> {
  return new Promise((resolve) => {
    client.once('close', () => resolve());
    client.end();
  });
}

type Step = Any;

/**
 * An ssh2 `authHandler` that tries `steps` in order, then gives up; records the
 * `methodsLeft` each call received.
 */
function steps(list: Step[], seen: Array<string[] | null> = []): ssh2.AuthHandlerMiddleware {
  let i = 0;
  return ((methodsLeft: string[] | null) => {
    seen.push(methodsLeft);
    return i < list.length ? list[i++] : false;
  }) as Any;
}

/** Like {@link steps}, but the last step repeats forever. */
function forever(step: Step, calls: { n: number }): ssh2.AuthHandlerMiddleware {
  return (() => {
    calls.n++;
    return step;
  }) as Any;
}

const pw = (password: string, username = 'testuser'): Step => ({ type: 'password', username, password });

/**
 * A custom agent that offers `offered` and signs with `signer` (which may sign with a
 * different key, return garbage, or fail).
 */
class TestAgent extends ssh2.BaseAgent {
  signCalls = 0;
  constructor(
    private readonly offered: ssh2.ParsedKey,
    private readonly signer: (data: Buffer, hash: string | undefined) => Buffer | Error,
  ) {
    super();
  }
  getIdentities(cb: Any): void {
    cb(null, [this.offered]);
  }
  sign(_pubKey: Any, data: Buffer, options: Any, cb?: Any): void {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    this.signCalls++;
    const result = this.signer(data, options?.hash);
    if (result instanceof Error) cb(result);
    else cb(null, result);
  }
}

const agentStep = (agent: ssh2.BaseAgent): Step => ({ type: 'agent', username: 'testuser', agent });

/** Makes the client believe the server advertised only `algs` in server-sig-algs. */
function forceSigAlgs(client: ssh2.Client, algs: string[]): void {
  const h = (client as Any)._protocol._handlers;
  const original = h.EXT_INFO;
  h.EXT_INFO = (p: unknown) => original(p, [{ name: 'server-sig-algs', algs }]);
}

/** Records the algorithm name of every signed public-key request the client sends. */
function recordSignedAlgos(client: ssh2.Client, out: string[]): void {
  const proto = (client as Any)._protocol;
  const original = proto.authPK;
  proto.authPK = function (this: unknown, user: string, key: unknown, algo: unknown, cbSign: unknown) {
    if (typeof algo === 'function' || typeof cbSign === 'function') out.push(typeof algo === 'string' ? algo : 'default');
    return original.call(this, user, key, algo, cbSign);
  };
}

interface SessionView {
  user: string;
  publicKey: PublicKey | undefined;
  ctxPublicKey: PublicKey | undefined;
  permissions: Permissions;
  ctxPermissions: Permissions;
}

/** A server handler that records what each session sees. */
function recordSessions(out: SessionView[]): Pick<ServerOptions, 'handler'> {
  return {
    handler: (s) => {
      out.push({
        user: s.user,
        publicKey: s.publicKey,
        ctxPublicKey: s.context.publicKey,
        permissions: s.permissions,
        ctxPermissions: s.context.permissions,
      });
    },
  };
}

/** Runs one exec on the client and returns what the session saw. */
async function sessionOf(client: ssh2.Client, sessions: SessionView[]): Promise<SessionView> {
  const before = sessions.length;
  await exec(client, 'true');
  assert.equal(sessions.length, before + 1, 'the handler ran once');
  return sessions[before]!;
}

const EMPTY: Permissions = { criticalOptions: {}, extensions: {} };

// ---------------------------------------------------------------- tests

describe('methods offered', () => {
  test('with no auth handler, a client gets in with method none', async () => {
    const ts = await start({ handler: () => undefined });
    try {
      const seen: Array<string[] | null> = [];
      const r = await login(ts.port, { authHandler: steps([{ type: 'none', username: 'testuser' }], seen) });
      assert.equal(r.ok, true, `client got in (${r.errors.map((e) => e.message).join(', ')})`);
      assert.deepEqual(seen, [null], 'the first attempt (none) was enough');
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('with a passwordHandler, none is refused and only password is offered', async () => {
    let calls = 0;
    const ts = await start({
      passwordHandler: () => {
        calls++;
        return true;
      },
    });
    try {
      const seen: Array<string[] | null> = [];
      const r = await login(ts.port, { authHandler: steps([{ type: 'none', username: 'testuser' }], seen) });
      assert.equal(r.ok, false, 'none must not authenticate');
      assert.deepEqual(seen, [null, ['password']]);
      assert.equal(calls, 0);
      assert.ok(r.errors.some((e) => e.level === 'client-authentication'));
    } finally {
      await ts.close();
    }
  });

  test('the methods offered are exactly the configured handlers', async () => {
    const cases: Array<[Partial<ServerOptions>, string[]]> = [
      [{ publicKeyHandler: () => true }, ['publickey']],
      [{ keyboardInteractiveHandler: () => true }, ['keyboard-interactive']],
      [{ publicKeyHandler: () => false, passwordHandler: () => false }, ['password', 'publickey']],
      [
        { publicKeyHandler: () => false, passwordHandler: () => false, keyboardInteractiveHandler: () => false },
        ['keyboard-interactive', 'password', 'publickey'],
      ],
    ];
    for (const [options, expected] of cases) {
      const ts = await start(options);
      try {
        const seen: Array<string[] | null> = [];
        const r = await login(ts.port, { authHandler: steps([{ type: 'none', username: 'testuser' }], seen) });
        assert.equal(r.ok, false);
        assert.equal(seen.length, 2);
        assert.deepEqual([...(seen[1] ?? [])].sort(), expected, `offered for ${Object.keys(options).join('+')}`);
      } finally {
        await ts.close();
      }
    }
  });
});

describe('password', () => {
  test('the handler gets the user and password; true lets the client in', async () => {
    const calls: Array<[string, string]> = [];
    const sessions: SessionView[] = [];
    const ts = await start({
      ...recordSessions(sessions),
      passwordHandler: (ctx, password) => {
        calls.push([ctx.user, password]);
        return password === 's3cret';
      },
    });
    try {
      const r = await login(ts.port, { password: 's3cret' });
      assert.equal(r.ok, true);
      assert.deepEqual(calls, [['testuser', 's3cret']]);
      const s = await sessionOf(r.client, sessions);
      assert.equal(s.user, 'testuser');
      assert.equal(s.publicKey, undefined);
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('false denies: the client fails with a client-authentication error and no session runs', async () => {
    const calls: string[] = [];
    const sessions: SessionView[] = [];
    const ts = await start({
      ...recordSessions(sessions),
      passwordHandler: (_ctx, password) => {
        calls.push(password);
        return false;
      },
    });
    try {
      const r = await login(ts.port, { password: 'wrong' });
      assert.equal(r.ok, false);
      assert.deepEqual(calls, ['wrong']);
      assert.ok(
        r.errors.some((e) => e.level === 'client-authentication'),
        `errors: ${r.errors.map((e) => `${e.level}: ${e.message}`).join(', ')}`,
      );
      assert.equal(sessions.length, 0, 'the server never ran the handler');
    } finally {
      await ts.close();
    }
  });

  test('a truthy non-boolean return value does not authenticate', async () => {
    const ts = await start({
      handler: () => undefined,
      passwordHandler: (() => 'yes') as Any,
    });
    try {
      const r = await login(ts.port, { password: 'x' });
      assert.equal(r.ok, false);
    } finally {
      await ts.close();
    }
  });
});

describe('public key with a real signature', () => {
  const cases: Array<[string, ClientKey]> = [
    ['Ed25519', keys.ed25519],
    ['ECDSA P-256', keys.p256],
    ['ECDSA P-384', keys.p384],
    ['ECDSA P-521', keys.p521],
  ];
  for (const [label, k] of cases) {
    test(`${label}: a signed login gets in and s.publicKey / ctx.publicKey are the key (ssh-keygen fingerprint)`, async () => {
      const sessions: SessionView[] = [];
      const offered: string[] = [];
      const ts = await start({
        ...recordSessions(sessions),
        publicKeyHandler: (_ctx, key) => {
          offered.push(key.fingerprint());
          return key.equals(k.key);
        },
      });
      try {
        const r = await login(ts.port, { privateKey: k.priv });
        assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
        assert.ok(offered.length >= 1 && offered.every((f) => f === k.fingerprint));
        const s = await sessionOf(r.client, sessions);
        assert.ok(s.publicKey, 'session has the key');
        assert.equal(s.publicKey.fingerprint(), k.fingerprint);
        assert.equal(s.publicKey.type, k.pubLine.split(' ')[0]);
        assert.ok(s.ctxPublicKey?.equals(s.publicKey), 'ctx.publicKey is the same key');
        assert.equal(s.ctxPublicKey?.fingerprint(), k.fingerprint);
        await end(r.client);
      } finally {
        await ts.close();
      }
    });
  }

  for (const algo of ['rsa-sha2-256', 'rsa-sha2-512']) {
    test(`RSA 2048 with ${algo}: a signed login gets in with the right fingerprint`, async () => {
      const sessions: SessionView[] = [];
      const ts = await start({
        ...recordSessions(sessions),
        publicKeyHandler: (_ctx, key) => key.equals(keys.rsa.key),
      });
      try {
        const used: string[] = [];
        const r = await login(ts.port, { privateKey: keys.rsa.priv }, (c) => {
          forceSigAlgs(c, [algo]);
          recordSignedAlgos(c, used);
        });
        assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
        assert.deepEqual(used, [algo], 'the client signed with the algorithm under test');
        const s = await sessionOf(r.client, sessions);
        assert.equal(s.publicKey?.fingerprint(), keys.rsa.fingerprint);
        assert.equal(s.publicKey.type, 'ssh-rsa');
        assert.ok(s.ctxPublicKey?.equals(s.publicKey));
        await end(r.client);
      } finally {
        await ts.close();
      }
    });
  }

  test('a key the handler refuses does not get in', async () => {
    const ts = await start({
      handler: () => undefined,
      publicKeyHandler: (_ctx, key) => key.equals(keys.ed25519.key),
    });
    try {
      const r = await login(ts.port, { privateKey: keys.p256.priv });
      assert.equal(r.ok, false);
      assert.ok(r.errors.some((e) => e.level === 'client-authentication'));
    } finally {
      await ts.close();
    }
  });
});

describe('forged public-key signatures', () => {
  const forgeries: Array<[string, ClientKey, (data: Buffer, hash: string | undefined) => Buffer | Error]> = [
    ['signed by a different Ed25519 key', keys.ed25519, (data) => keys.ed25519b.parsed.sign(data) as Buffer],
    ['signed by a different P-256 key', keys.p256, (data) => keys.p256b.parsed.sign(data) as Buffer],
    ['64 bytes of garbage', keys.ed25519, () => Buffer.alloc(64, 0x41)],
    ['signed by the right key over different data', keys.ed25519, (data) => keys.ed25519.parsed.sign(Buffer.concat([data, Buffer.from([0])])) as Buffer],
  ];
  for (const [label, k, signer] of forgeries) {
    test(`an accepted key with a signature ${label} is rejected and never becomes ctx.publicKey`, async () => {
      const sessions: SessionView[] = [];
      let pkCalls = 0;
      const publicKeyAtPassword: Array<PublicKey | undefined> = [];
      const ts = await start({
        ...recordSessions(sessions),
        publicKeyHandler: (_ctx, key) => {
          pkCalls++;
          return key.equals(k.key);
        },
        passwordHandler: (ctx, password) => {
          publicKeyAtPassword.push(ctx.publicKey);
          return password === 'pw';
        },
      });
      try {
        // Without a fallback, the forged key alone must not get in.
        const agent1 = new TestAgent(k.parsed, signer);
        const r1 = await login(ts.port, { authHandler: steps([agentStep(agent1)]) });
        assert.equal(r1.ok, false, 'a forged signature must not authenticate');
        assert.ok(pkCalls >= 1, 'the handler accepted the offered key');
        assert.equal(agent1.signCalls, 1, 'the client did send a signature');

        // With a password fallback, the session must not carry the offered key.
        const agent2 = new TestAgent(k.parsed, signer);
        const r2 = await login(ts.port, { authHandler: steps([agentStep(agent2), pw('pw')]) });
        if (r2.ok) {
          assert.equal(agent2.signCalls, 1);
          assert.deepEqual(publicKeyAtPassword, [undefined]);
          const s = await sessionOf(r2.client, sessions);
          assert.equal(s.publicKey, undefined, 'session.publicKey must not be the forged key');
          assert.equal(s.ctxPublicKey, undefined, 'ctx.publicKey must not be the forged key');
          await end(r2.client);
        } else {
          // ssh2 may drop a connection whose signature it cannot even parse; that is also safe.
          assert.equal(sessions.length, 0);
        }
      } finally {
        await ts.close();
      }
    });
  }

  test('an RSA signature made with SHA-256 but labelled rsa-sha2-512 is rejected', async () => {
    const ts = await start({
      handler: () => undefined,
      publicKeyHandler: (_ctx, key) => key.equals(keys.rsa.key),
    });
    try {
      const agent = new TestAgent(keys.rsa.parsed, (data) => keys.rsa.parsed.sign(data, 'sha256') as Buffer);
      const used: string[] = [];
      const r = await login(ts.port, { authHandler: steps([agentStep(agent)]) }, (c) => {
        forceSigAlgs(c, ['rsa-sha2-512']);
        recordSignedAlgos(c, used);
      });
      assert.deepEqual(used, ['rsa-sha2-512']);
      assert.equal(agent.signCalls, 1);
      assert.equal(r.ok, false);
    } finally {
      await ts.close();
    }
  });
});

describe('fresh state per attempt (CVE-2024-45337)', () => {
  test('a key accepted only on query, then a password login: no publicKey and only the password permissions', async () => {
    const sessions: SessionView[] = [];
    let queried = 0;
    const ts = await start({
      ...recordSessions(sessions),
      publicKeyHandler: (ctx, key) => {
        queried++;
        ctx.permissions.extensions['evil'] = '1';
        ctx.permissions.criticalOptions['force-command'] = 'evil';
        return key.equals(keys.ed25519.key);
      },
      passwordHandler: (ctx, password) => {
        ctx.permissions.extensions['a'] = '1';
        return password === 'pw';
      },
    });
    try {
      const agent = new TestAgent(keys.ed25519.parsed, () => new Error('cannot sign'));
      const r = await login(ts.port, { authHandler: steps([agentStep(agent), pw('pw')]) });
      assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
      assert.equal(queried, 1, 'the key was offered and accepted on query');
      assert.equal(agent.signCalls, 1, 'the client was asked to sign (PK_OK) and failed');
      const s = await sessionOf(r.client, sessions);
      assert.equal(s.publicKey, undefined);
      assert.equal(s.ctxPublicKey, undefined);
      assert.deepEqual(s.permissions, { criticalOptions: {}, extensions: { a: '1' } });
      assert.deepEqual(s.ctxPermissions, { criticalOptions: {}, extensions: { a: '1' } });
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('a key accepted on query, then a different key signs: ctx.publicKey is the key that signed', async () => {
    const sessions: SessionView[] = [];
    const ts = await start({
      ...recordSessions(sessions),
      publicKeyHandler: (ctx, key) => {
        ctx.permissions.extensions['key'] = key.fingerprint();
        return key.equals(keys.ed25519.key) || key.equals(keys.p256.key);
      },
    });
    try {
      const agent = new TestAgent(keys.ed25519.parsed, () => new Error('cannot sign'));
      const r = await login(ts.port, {
        authHandler: steps([agentStep(agent), { type: 'publickey', username: 'testuser', key: keys.p256.priv }]),
      });
      assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
      const s = await sessionOf(r.client, sessions);
      assert.equal(s.publicKey?.fingerprint(), keys.p256.fingerprint);
      assert.equal(s.ctxPublicKey?.fingerprint(), keys.p256.fingerprint);
      assert.deepEqual(s.permissions, { criticalOptions: {}, extensions: { key: keys.p256.fingerprint } });
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('a failed attempt before the successful one leaves no permissions behind', async () => {
    const sessions: SessionView[] = [];
    const ts = await start({
      ...recordSessions(sessions),
      passwordHandler: (ctx, password) => {
        if (password === 'pw') {
          ctx.permissions.extensions['a'] = '1';
          return true;
        }
        ctx.permissions.extensions['evil'] = '1';
        return false;
      },
    });
    try {
      const r = await login(ts.port, { authHandler: steps([pw('bad'), pw('pw')]) });
      assert.equal(r.ok, true);
      const s = await sessionOf(r.client, sessions);
      assert.deepEqual(s.permissions, { criticalOptions: {}, extensions: { a: '1' } });
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('every handler call sees empty ctx.permissions', async () => {
    const snapshots: Array<[string, Permissions]> = [];
    const ts = await start({
      handler: () => undefined,
      publicKeyHandler: (ctx) => {
        snapshots.push(['publickey', structuredClone(ctx.permissions)]);
        ctx.permissions.extensions['pk'] = '1';
        ctx.permissions.criticalOptions['pk'] = '1';
        return true;
      },
      keyboardInteractiveHandler: async (ctx, challenge) => {
        snapshots.push(['keyboard-interactive', structuredClone(ctx.permissions)]);
        ctx.permissions.extensions['kbd'] = '1';
        await challenge('', '', [{ prompt: 'x', echo: true }]);
        return false;
      },
      passwordHandler: (ctx, password) => {
        snapshots.push(['password', structuredClone(ctx.permissions)]);
        ctx.permissions.extensions[password] = '1';
        return password === 'pw';
      },
    });
    try {
      const agent = new TestAgent(keys.ed25519.parsed, () => new Error('cannot sign'));
      const kbd = {
        type: 'keyboard-interactive',
        username: 'testuser',
        prompt: (_n: string, _i: string, _l: string, _p: unknown, finish: (a: string[]) => void) => finish(['y']),
      };
      const r = await login(ts.port, { authHandler: steps([agentStep(agent), pw('bad1'), kbd, pw('bad2'), pw('pw')]) });
      assert.equal(r.ok, true);
      assert.deepEqual(
        snapshots.map(([m]) => m),
        ['publickey', 'password', 'keyboard-interactive', 'password', 'password'],
      );
      for (const [method, p] of snapshots) assert.deepEqual(p, EMPTY, `${method} attempt started empty`);
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('a keyboard-interactive attempt superseded by a new request cannot write into the next attempt\'s permissions', async () => {
    const sessions: SessionView[] = [];
    let kbdDone = false;
    const ts = await start({
      ...recordSessions(sessions),
      keyboardInteractiveHandler: async (ctx, challenge) => {
        const [code] = await challenge('', '', [{ prompt: 'Code: ', echo: false }]);
        await delay(100); // e.g. checking the code against a database
        ctx.permissions.extensions['evil'] = '1';
        ctx.permissions.criticalOptions['force-command'] = String(code);
        kbdDone = true;
        return false;
      },
      passwordHandler: (ctx, password) => {
        ctx.permissions.extensions['a'] = '1';
        return password === 'pw';
      },
    });
    try {
      const r = await login(ts.port, { tryKeyboard: true, authHandler: steps(['keyboard-interactive']) }, (c) => {
        c.on('keyboard-interactive', (_n, _i, _l, _p, finish) => {
          finish(['123']);
          // RFC 4252 §5: a new request aborts the pending keyboard-interactive exchange.
          (c as Any)._protocol.authPassword('testuser', 'pw');
        });
      });
      assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
      await waitFor(() => kbdDone, 2000, 'the superseded handler to finish');
      await delay(20);
      const s = await sessionOf(r.client, sessions);
      assert.deepEqual(s.permissions, { criticalOptions: {}, extensions: { a: '1' } });
      assert.deepEqual(s.ctxPermissions, { criticalOptions: {}, extensions: { a: '1' } });
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('a superseded keyboard-interactive handler cannot prompt any more and does not hold up the next attempt', async () => {
    const outcome: string[] = [];
    const ts = await start({
      handler: () => undefined,
      handshakeTimeout: 1500,
      keyboardInteractiveHandler: async (_ctx, challenge) => {
        await challenge('', 'round 1', [{ prompt: 'Code: ', echo: false }]);
        await delay(100); // still working when the client moves on
        try {
          await challenge('', 'round 2', [{ prompt: 'Code: ', echo: false }]);
          outcome.push('answered');
        } catch {
          outcome.push('refused');
        }
        return true;
      },
      passwordHandler: (_ctx, password) => password === 'pw',
    });
    try {
      const prompted: string[] = [];
      const r = await login(ts.port, { tryKeyboard: true, authHandler: steps(['keyboard-interactive']) }, (c) => {
        c.on('keyboard-interactive', (_n, instructions, _l, _p, finish) => {
          prompted.push(instructions);
          finish(['x']);
          // RFC 4252 §5: a new request aborts the pending keyboard-interactive exchange.
          if (prompted.length === 1) (c as Any)._protocol.authPassword('testuser', 'pw');
        });
      });
      assert.equal(r.ok, true, `errors: ${r.errors.map((e) => e.message).join(', ')}`);
      await waitFor(() => outcome.length === 1, 2000, 'the superseded handler to finish');
      assert.deepEqual(outcome, ['refused']);
      assert.deepEqual(prompted, ['round 1'], 'no prompt was sent for the aborted attempt');
      await end(r.client);
    } finally {
      await ts.close();
    }
  });

  test('a user name change between attempts disconnects and the second user is never authenticated', async () => {
    const users: string[] = [];
    const failed: Error[] = [];
    let sessions = 0;
    const ts = await start({
      handler: () => {
        sessions++;
      },
      passwordHandler: (ctx, password) => {
        users.push(ctx.user);
        return password === 'pw';
      },
      connectionFailedCallback: (_sock, err) => failed.push(err),
    });
    try {
      const r = await login(ts.port, { authHandler: steps([pw('bad', 'testuser'), pw('pw', 'other')]) });
      assert.equal(r.ok, false, 'the second user must not get in');
      assert.deepEqual(users, ['testuser'], 'the handler never saw the changed name');
      assert.equal(sessions, 0);
      await waitFor(() => failed.length === 1, 2000, 'connectionFailedCallback');
    } finally {
      await ts.close();
    }
  });

  test('ctx.user is read afresh on every attempt', async () => {
    const users: string[] = [];
    const sessionUsers: string[] = [];
    const ts = await start({
      handler: (s) => {
        sessionUsers.push(s.user);
      },
      passwordHandler: (ctx, password) => {
        users.push(ctx.user);
        if (password === 'pw') return true;
        // A misbehaving handler scribbles over the name; the next attempt must not see it.
        (ctx as Any).user = 'root';
        return false;
      },
    });
    try {
      const r = await login(ts.port, { authHandler: steps([pw('bad'), pw('bad'), pw('pw')]) });
      assert.equal(r.ok, true);
      assert.deepEqual(users, ['testuser', 'testuser', 'testuser']);
      await exec(r.client, 'true');
      assert.deepEqual(sessionUsers, ['testuser']);
      await end(r.client);
    } finally {
      await ts.close();
    }
  });
});

describe('maxAuthTries', () => {
  async function wrongPasswords(options: Partial<ServerOptions>): Promise<{ calls: number; failed: Error[]; clientCalls: number }> {
    let calls = 0;
    const failed: Error[] = [];
    const ts = await start({
      ...options,
      passwordHandler: () => {
        calls++;
        return false;
      },
      connectionFailedCallback: (_sock, err) => failed.push(err),
    });
    try {
      const clientCalls = { n: 0 };
      const r = await login(ts.port, { authHandler: forever(pw('wrong'), clientCalls) });
      assert.equal(r.ok, false);
      await waitFor(() => failed.length === 1, 2000, 'connectionFailedCallback');
      return { calls, failed, clientCalls: clientCalls.n };
    } finally {
      await ts.close();
    }
  }

  test('by default the client is disconnected after 6 failed attempts', async () => {
    const { calls, failed, clientCalls } = await wrongPasswords({});
    assert.equal(calls, 6);
    assert.equal(clientCalls, 6, 'the client was not offered a 7th attempt');
    assert.equal((failed[0] as Any).code, 'ERR_AUTH_TRIES');
  });

  test('maxAuthTries: 2 disconnects after 2 failed attempts; connectionFailedCallback gets ERR_AUTH_TRIES', async () => {
    const { calls, failed } = await wrongPasswords({ maxAuthTries: 2 });
    assert.equal(calls, 2);
    assert.equal(failed.length, 1);
    assert.equal((failed[0] as Any).code, 'ERR_AUTH_TRIES');
  });

  test('none attempts are not counted as failures', async () => {
    let calls = 0;
    const ts = await start({
      handler: () => undefined,
      maxAuthTries: 2,
      passwordHandler: (_ctx, password) => {
        calls++;
        return password === 'pw';
      },
    });
    try {
      const none = { type: 'none', username: 'testuser' };
      const r = await login(ts.port, { authHandler: steps([none, none, none, pw('bad'), pw('pw')]) });
      assert.equal(r.ok, true);
      assert.equal(calls, 2);
      await end(r.client);
    } finally {
      await ts.close();
    }
  });
});

describe('keyboard-interactive', () => {
  async function kbd(answer: string): Promise<{ r: Login; prompts: unknown[] }> {
    const ts = await start({
      handler: () => undefined,
      keyboardInteractiveHandler: async (_ctx, challenge) => {
        const answers = await challenge('name', 'instr', [{ prompt: 'Code: ', echo: false }]);
        return answers.length === 1 && answers[0] === '1234';
      },
    });
    try {
      const prompts: unknown[] = [];
      const r = await login(ts.port, { tryKeyboard: true }, (c) => {
        c.on('keyboard-interactive', (name, instructions, _lang, ps, finish) => {
          prompts.push({ name, instructions, prompts: ps });
          finish([answer]);
        });
      });
      if (r.ok) await end(r.client);
      return { r, prompts };
    } finally {
      await ts.close();
    }
  }

  test('the challenge reaches the client and the right answer gets in', async () => {
    const { r, prompts } = await kbd('1234');
    assert.equal(r.ok, true);
    assert.deepEqual(prompts, [{ name: 'name', instructions: 'instr', prompts: [{ prompt: 'Code: ', echo: false }] }]);
  });

  test('a wrong answer is denied', async () => {
    const { r, prompts } = await kbd('0000');
    assert.equal(r.ok, false);
    assert.equal(prompts.length, 1);
    assert.ok(r.errors.some((e) => e.level === 'client-authentication'));
  });
});

describe('failing hooks', () => {
  for (const [label, make] of [
    ['throws', () => () => {
      throw new Error('boom');
    }],
    ['rejects', () => async () => {
      throw new Error('boom');
    }],
  ] as const) {
    test(`a passwordHandler that ${label} denies, reports ERR_HOOK with err.context, and the server keeps serving`, async () => {
      const contexts: Context[] = [];
      const failing = make();
      const ts = await start({
        handler: () => undefined,
        passwordHandler: (ctx, password) => (password === 'boom' ? failing() : password === 'pw') as Any,
      });
      ts.server.on('connection', (ctx) => contexts.push(ctx));
      try {
        const r = await login(ts.port, { password: 'boom' });
        assert.equal(r.ok, false, 'a failing hook denies');
        await waitFor(() => ts.errors.length >= 1, 2000, 'error event');
        const err = ts.errors[0] as Any;
        assert.equal(err.code, 'ERR_HOOK');
        assert.equal(err.context, contexts[0], 'err.context is the connection context');
        const ok = await login(ts.port, { password: 'pw' });
        assert.equal(ok.ok, true, 'the server still serves');
        await exec(ok.client, 'true');
        await end(ok.client);
      } finally {
        await ts.close();
      }
    });
  }

  test('a publicKeyHandler that throws denies and reports ERR_HOOK', async () => {
    const ts = await start({
      handler: () => undefined,
      publicKeyHandler: () => {
        throw new Error('boom');
      },
    });
    try {
      const r = await login(ts.port, { privateKey: keys.ed25519.priv });
      assert.equal(r.ok, false);
      assert.ok(ts.errors.length >= 1);
      assert.ok(ts.errors.every((e) => (e as Any).code === 'ERR_HOOK' && (e as Any).context));
    } finally {
      await ts.close();
    }
  });

  test('a keyboardInteractiveHandler that rejects denies and reports ERR_HOOK', async () => {
    const ts = await start({
      handler: () => undefined,
      keyboardInteractiveHandler: async () => {
        throw new Error('boom');
      },
    });
    try {
      const r = await login(ts.port, { tryKeyboard: true });
      assert.equal(r.ok, false);
      assert.equal(ts.errors.length, 1);
      assert.equal((ts.errors[0] as Any).code, 'ERR_HOOK');
    } finally {
      await ts.close();
    }
  });
});

describe('handshake timeout', () => {
  test('a handler that never settles is cut off by handshakeTimeout with ERR_TIMEOUT', async () => {
    const failed: Error[] = [];
    let called = 0;
    const ts = await start({
      handshakeTimeout: 300,
      passwordHandler: () => {
        called++;
        return new Promise<boolean>(() => undefined);
      },
      connectionFailedCallback: (_sock, err) => failed.push(err),
    });
    try {
      const start = Date.now();
      const r = await login(ts.port, { password: 'x' });
      const elapsed = Date.now() - start;
      assert.equal(r.ok, false);
      assert.equal(called, 1);
      assert.ok(elapsed >= 250 && elapsed < 1500, `closed after ${elapsed} ms`);
      await waitFor(() => failed.length === 1, 1000, 'connectionFailedCallback');
      assert.equal((failed[0] as Any).code, 'ERR_TIMEOUT');
    } finally {
      await ts.close();
    }
  });
});
