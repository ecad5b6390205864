/**
 * Error classes and codes: every code is documented in docs/errors.md, every code src/ uses is
 * listed in ERROR_CODES, and `instanceof GlidesshError` works across copies of the package.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AuthTriesExceededError,
  ChannelClosedError,
  ConnectionClosedError,
  ERROR_CODES,
  GlidesshError,
  HookError,
  InvalidOptionError,
  KeyParseError,
  ServerClosedError,
  SessionExitedError,
  TimeoutError,
  ConnectionRefusedError,
  StrictKexRequiredError,
  ForwardingError,
  ProxyProtocolError,
  MissingDependencyError,
  NoPtyError,
  SftpStatusError,
} from '../../src/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const docs = readFileSync(join(root, 'docs/errors.md'), 'utf8');

/** Every .ts file under src/, recursively. */
function sourceFiles(dir = join(root, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Codes src/ mentions that are Node's, not ours: src/keys.ts reads `ERR_MISSING_PASSPHRASE` off a
 * node:crypto error to tell an encrypted key from garbage. glidessh never throws these.
 */
const NODE_CODES = new Set(['ERR_MISSING_PASSPHRASE']);

/** The documented table rows: code → class, read from docs/errors.md. */
function docRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of docs.split('\n')) {
    const m = /^\| `(ERR_[A-Z_]+)` \| `([A-Za-z]+)` \|(.+)\|(.+)\|\s*$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

/** One instance of each subclass, with the code it must carry. */
const instances: Array<[GlidesshError, string, Function]> = [
  [new InvalidOptionError('maxAuthTries', 'must be at least 1'), 'ERR_INVALID_OPTION', InvalidOptionError],
  [new ServerClosedError(), 'ERR_SERVER_CLOSED', ServerClosedError],
  [new SessionExitedError(), 'ERR_SESSION_EXITED', SessionExitedError],
  [new ChannelClosedError(), 'ERR_CHANNEL_CLOSED', ChannelClosedError],
  [new KeyParseError('bad key'), 'ERR_KEY_PARSE', KeyParseError],
  [new TimeoutError('idle', 1000), 'ERR_TIMEOUT', TimeoutError],
  [new AuthTriesExceededError(6), 'ERR_AUTH_TRIES', AuthTriesExceededError],
  [new HookError('passwordHandler', new Error('boom')), 'ERR_HOOK', HookError],
  [new ConnectionClosedError(), 'ERR_CONNECTION_CLOSED', ConnectionClosedError],
  [new GlidesshError('ERR_CONNECTION_DROPPED', 'dropped by connCallback'), 'ERR_CONNECTION_DROPPED', GlidesshError],
  [new ConnectionRefusedError('max-startups'), 'ERR_CONNECTION_REFUSED', ConnectionRefusedError],
  [new StrictKexRequiredError(), 'ERR_STRICT_KEX', StrictKexRequiredError],
  [new ForwardingError('too many forwarded connections'), 'ERR_FORWARDING', ForwardingError],
  [new ProxyProtocolError('no header'), 'ERR_PROXY_PROTOCOL', ProxyProtocolError],
  [new MissingDependencyError('node-pty', 'runInPty()'), 'ERR_MISSING_DEPENDENCY', MissingDependencyError],
  [new NoPtyError(), 'ERR_NO_PTY', NoPtyError],
  [new SftpStatusError(2, 'No such file'), 'ERR_SFTP_STATUS', SftpStatusError],
];

describe('ERROR_CODES and docs/errors.md', () => {
  it('every code in ERROR_CODES has a row in docs/errors.md', () => {
    const rows = docRows();
    const missing = ERROR_CODES.filter((code) => !rows.has(code));
    assert.deepEqual(missing, [], `add a row to docs/errors.md for: ${missing.join(', ')}`);
  });

  it('docs/errors.md documents no code that ERROR_CODES lacks, and each row names the right class', () => {
    const rows = docRows();
    assert.deepEqual([...rows.keys()].sort(), [...ERROR_CODES].sort());
    for (const [instance, code] of instances) {
      assert.equal(rows.get(code), instance.constructor.name, `class column of ${code}`);
    }
  });

  it('every ERR_* string used in src/ is in ERROR_CODES', () => {
    const known = new Set<string>(ERROR_CODES);
    const unknown: string[] = [];
    const files = sourceFiles();
    assert.ok(files.length > 5, 'found the sources');
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const [code] of text.matchAll(/ERR_[A-Z_]+/g)) {
        if (!known.has(code) && !NODE_CODES.has(code)) unknown.push(`${code} (${file.slice(root.length)})`);
      }
    }
    assert.deepEqual(unknown, [], 'add these codes to ERROR_CODES and docs/errors.md');
  });

  it('ERROR_CODES has no duplicates, and every subclass carries a code from it', () => {
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
    const covered = new Set(instances.map(([e]) => e.code));
    assert.deepEqual([...covered].sort(), [...ERROR_CODES].sort(), 'one instance per code in this test');
    for (const [e, code] of instances) assert.equal(e.code, code);
  });
});

describe('error classes', () => {
  for (const [instance, code, cls] of instances) {
    it(`${instance.constructor.name} (${code}) is an Error and instanceof GlidesshError`, () => {
      assert.ok(instance instanceof Error);
      assert.ok(instance instanceof GlidesshError);
      assert.ok(instance instanceof cls);
      assert.equal(instance.code, code);
      assert.equal(instance.name, cls.name);
      assert.ok(instance.message.length > 0);
      assert.ok(instance.stack?.includes(cls.name));
    });
  }

  it('a subclass instanceof check does not match its siblings', () => {
    assert.equal(new ServerClosedError() instanceof TimeoutError, false);
    assert.equal(new TimeoutError('max', 1) instanceof ServerClosedError, false);
    assert.equal(new GlidesshError('ERR_HOOK', 'x') instanceof HookError, false);
  });

  it('subclasses carry their extra fields and cause', () => {
    const cause = new Error('inner');
    const opt = new InvalidOptionError('addr', 'bad', { cause });
    assert.equal(opt.option, 'addr');
    assert.equal(opt.cause, cause);
    assert.match(opt.message, /addr/);
    assert.equal(new TimeoutError('handshake', 50).kind, 'handshake');
    const hook = new HookError('ptyCallback', cause);
    assert.equal(hook.hook, 'ptyCallback');
    assert.equal(hook.cause, cause);
    assert.match(hook.message, /ptyCallback.*inner/);
    assert.equal(new KeyParseError('k', { cause }).cause, cause);
  });

  it('instanceof GlidesshError works for an error from another copy of the package (Symbol.for brand)', () => {
    // What a second install's GlidesshError instance looks like: same global brand, other class.
    const brand = Symbol.for('glidessh.error');
    class OtherCopyError extends Error {
      readonly code = 'ERR_TIMEOUT';
      get [brand](): true {
        return true;
      }
    }
    const foreign = new OtherCopyError('from another copy');
    assert.ok(foreign instanceof GlidesshError);
    assert.equal(foreign instanceof TimeoutError, false, 'subclass checks stay exact');
    // A plain object with the brand counts too (the check is the brand, not the prototype).
    assert.ok(({ [brand]: true, code: 'ERR_HOOK' } as unknown) instanceof GlidesshError);
    // And our own errors carry the global brand for the other copy to see.
    assert.equal((new ServerClosedError() as unknown as Record<symbol, unknown>)[brand], true);
  });

  it('instanceof GlidesshError is false for look-alikes without the brand', () => {
    for (const v of [
      new Error('x'),
      Object.assign(new Error('x'), { code: 'ERR_TIMEOUT' }),
      { code: 'ERR_TIMEOUT', name: 'GlidesshError' },
      { [Symbol('glidessh.error')]: true },
      { [Symbol.for('glidessh.error')]: 'yes' },
      null,
      undefined,
      'ERR_TIMEOUT',
      42,
    ]) {
      assert.equal(v instanceof GlidesshError, false, String(v));
    }
  });
});
