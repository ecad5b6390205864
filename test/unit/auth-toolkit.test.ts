/**
 * The authentication toolkit over a real connection (ssh2 client): multi-factor logins with
 * SSH partial success (`authMethods`), `authFailedCallback` with method and reason and no
 * user-existence oracle, and restrictions from authorized_keys reaching the session.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, describe, test as nodeTest } from 'node:test';
import ssh2 from 'ssh2';
import {
  authorizedKeysHandler,
  InvalidOptionError,
  passedAuthMethods,
  Server,
  type AuthFailure,
  type ServerOptions,
} from '../../src/index.js';
import { exec, startServer, type TestServer } from '../helpers/harness.js';
import { KeyLab } from '../helpers/certs.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const test = (name: string, fn: () => Promise<void>): void => {
  nodeTest(name, { timeout: 8000 }, fn);
};

const lab = new KeyLab();
after(() => lab.cleanup());
const alice = lab.key('alice', 'ed25519');
const other = lab.key('other', 'ed25519');
const privateKey = (path: string): string => readFileSync(path, 'utf8');

const servers = new Set<TestServer>();
const clients = new Set<ssh2.Client>();
afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.clear();
  await Promise.all([...servers].map((s) => s.close()));
  servers.clear();
});

async function start(options: ServerOptions): Promise<TestServer> {
  const ts = await startServer(options);
  servers.add(ts);
  return ts;
}

interface Attempt {
  methodsLeft: string[] | null;
  partial: boolean | null;
}

/**
 * Logs in with ssh2's client trying `steps` in order; records the methods list and
 * partial-success flag of every failure reply.
 */
function login(port: number, username: string, steps: Any[]): Promise<{ ok: boolean; seen: Attempt[]; client: ssh2.Client }> {
  const client = new ssh2.Client();
  clients.add(client);
  const seen: Attempt[] = [];
  let i = 0;
  return new Promise((resolve) => {
    client.on('error', () => undefined);
    client.once('ready', () => resolve({ ok: true, seen, client }));
    client.once('close', () => resolve({ ok: false, seen, client }));
    client.connect({
      host: '127.0.0.1',
      port,
      username,
      readyTimeout: 6000,
      authHandler: ((methodsLeft: string[] | null, partial: boolean | null, cb: (step: Any) => void) => {
        if (i > 0) seen.push({ methodsLeft, partial });
        cb(i < steps.length ? steps[i++] : false);
      }) as Any,
    });
  });
}

const pk = (path: string, username = 'alice'): Any => ({ type: 'publickey', username, key: privateKey(path) });
const kbd = (answer: string, username = 'alice'): Any => ({
  type: 'keyboard-interactive',
  username,
  prompt: (_n: string, _i: string, _l: string, _p: unknown, finish: (a: string[]) => void) => finish([answer]),
});
const pw = (password: string, username = 'alice'): Any => ({ type: 'password', username, password });

describe('authMethods: multi-factor with partial success', () => {
  const seenByKbd: string[][] = [];
  const options = (): ServerOptions => ({
    publicKeyHandler: authorizedKeysHandler({ text: `no-port-forwarding,environment="FACTOR=key" ${alice.line}` }),
    keyboardInteractiveHandler: async (ctx, challenge) => {
      seenByKbd.push(passedAuthMethods(ctx));
      ctx.permissions.extensions['otp@example.com'] = 'ok';
      const [code] = await challenge('', 'one-time code', [{ prompt: 'Code: ', echo: false }]);
      return code === '123456' && ctx.publicKey !== undefined;
    },
    passwordHandler: () => false,
    authMethods: [['publickey', 'keyboard-interactive']],
    handler: (s) => {
      s.write(
        JSON.stringify({
          methods: passedAuthMethods(s.context),
          key: s.publicKey?.fingerprint(),
          otp: s.permissions.extensions['otp@example.com'],
          env: s.environ,
        }),
      );
    },
  });

  test('a key, then a keyboard-interactive code: partial success in between, both factors kept', async () => {
    seenByKbd.length = 0;
    const ts = await start(options());
    const r = await login(ts.port, 'alice', [pk(alice.path), kbd('123456')]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.seen, [{ methodsLeft: ['keyboard-interactive'], partial: true }]);
    assert.deepEqual(seenByKbd, [['publickey']], 'the second factor sees which factors passed');
    const out = JSON.parse((await exec(r.client, 'x')).stdout.toString());
    assert.deepEqual(out, { methods: ['publickey', 'keyboard-interactive'], key: alice.key.fingerprint(), otp: 'ok', env: ['FACTOR=key'] });
  });

  test('only the next factor is offered; out of order, a wrong code or a wrong key fail without partial success', async () => {
    const failures: AuthFailure[] = [];
    const ts = await start({ ...options(), authFailedCallback: (_ctx, f) => void failures.push(f) });
    const r = await login(ts.port, 'alice', [kbd('123456'), pw('x'), pk(other.path), pk(alice.path), kbd('000000'), kbd('123456')]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.seen, [
      { methodsLeft: ['publickey'], partial: false },
      { methodsLeft: ['publickey'], partial: false },
      { methodsLeft: ['publickey'], partial: false },
      { methodsLeft: ['keyboard-interactive'], partial: true },
      { methodsLeft: ['keyboard-interactive'], partial: false },
    ]);
    assert.deepEqual(
      failures.map((f) => [f.method, f.reason]),
      [
        ['keyboard-interactive', 'method-not-allowed'],
        ['password', 'method-not-allowed'],
        ['publickey', 'key-not-authorized'],
        ['keyboard-interactive', 'denied'],
      ],
    );
  });

  test('with one factor alone the client never gets in', async () => {
    const ts = await start(options());
    const r = await login(ts.port, 'alice', [pk(alice.path)]);
    assert.equal(r.ok, false);
  });

  test('authMethods is validated: shape, method names, handlers', async () => {
    for (const bad of [[], [[]], ['publickey'], [['publickey', 'telepathy']], [['password']]] as unknown[]) {
      assert.throws(
        () => new Server({ publicKeyHandler: () => true, authMethods: bad as string[][] }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'authMethods',
        JSON.stringify(bad),
      );
    }
    assert.doesNotThrow(() => new Server({ publicKeyHandler: () => true, passwordHandler: () => true, authMethods: [['publickey', 'password'], ['password']] }));
  });
});

describe('authFailedCallback', () => {
  test('every failed attempt is reported once with method, reason, user and offered key; none is not', async () => {
    const failures: Array<AuthFailure & { addr: string }> = [];
    const ts = await start({
      publicKeyHandler: authorizedKeysHandler({ text: alice.line }),
      passwordHandler: (ctx, p) => ctx.user === 'alice' && p === 'right',
      authFailedCallback: (ctx, f) => void failures.push({ ...f, addr: ctx.remoteAddress }),
    });
    const r = await login(ts.port, 'alice', [{ type: 'none', username: 'alice' }, pk(other.path), pw('wrong'), pw('right')]);
    assert.equal(r.ok, true);
    assert.deepEqual(
      failures.map((f) => [f.method, f.reason, f.user, f.publicKey?.fingerprint(), f.addr]),
      [
        ['publickey', 'key-not-authorized', 'alice', other.key.fingerprint(), '127.0.0.1'],
        ['password', 'denied', 'alice', undefined, '127.0.0.1'],
      ],
    );
  });

  test('an unknown user gets exactly the replies a known user gets', async () => {
    const reasons: string[] = [];
    const ts = await start({
      publicKeyHandler: authorizedKeysHandler({ text: alice.line }),
      passwordHandler: (ctx, p) => ctx.user === 'alice' && p === 'right',
      keyboardInteractiveHandler: () => false,
      authFailedCallback: (_ctx, f) => void reasons.push(`${f.user}:${f.reason}`),
      maxAuthTries: 3,
    });
    const tries = (u: string): Any[] => [pk(other.path, u), pw('wrong', u), kbd('x', u), pw('wrong', u)];
    const known = await login(ts.port, 'alice', tries('alice'));
    const unknown = await login(ts.port, 'nobody', tries('nobody'));
    assert.equal(known.ok, false);
    assert.equal(unknown.ok, false);
    assert.deepEqual(unknown.seen, known.seen);
    assert.deepEqual(reasons, [
      'alice:key-not-authorized', 'alice:denied', 'alice:denied',
      'nobody:key-not-authorized', 'nobody:denied', 'nobody:denied',
    ]);
  });

  test('a throwing authFailedCallback is reported and changes nothing', async () => {
    const ts = await start({ passwordHandler: (_c, p) => p === 'ok', authFailedCallback: () => { throw new Error('log full'); } });
    const r = await login(ts.port, 'alice', [pw('no'), pw('ok')]);
    assert.equal(r.ok, true);
    assert.ok(ts.errors.some((e) => /authFailedCallback.*log full/.test(e.message)));
  });
});

describe('authorized_keys restrictions reach the session', () => {
  test('no-pty refuses the pty; command= replaces the command with SSH_ORIGINAL_COMMAND set', async () => {
    const ts = await start({
      publicKeyHandler: authorizedKeysHandler({ text: `no-pty,command="report" ${alice.line}` }),
      handler: (s) => void s.write(JSON.stringify({ pty: s.pty !== undefined, cmd: s.rawCommand, env: s.environ })),
    });
    const r = await login(ts.port, 'alice', [pk(alice.path)]);
    assert.equal(r.ok, true);
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      r.client.exec('ls -l', (err, c) => (err ? reject(err) : resolve(c))),
    );
    const out: Buffer[] = [];
    ch.on('data', (d: Buffer) => out.push(d));
    await new Promise((resolve) => ch.on('close', resolve));
    assert.deepEqual(JSON.parse(Buffer.concat(out).toString()), { pty: false, cmd: 'report', env: ['SSH_ORIGINAL_COMMAND=ls -l'] });
    await assert.rejects(exec(r.client, 'x', { pty: true }), /pseudo-terminal|pty/i, 'the pty request is refused');
  });
});
