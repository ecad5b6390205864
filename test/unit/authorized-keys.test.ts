/**
 * authorized_keys: the sshd key options (parsing and semantics), client address patterns,
 * the handler built from text or a file that changes while it is in use, and the
 * restrictions vocabulary the session enforces.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  authorizedKeysHandler,
  forcedCommand,
  isPermitted,
  KeyParseError,
  parseKeyOptions,
  PERMISSION_KEYS,
  portForwardingAllowed,
  type Context,
  type Permissions,
} from '../../src/index.js';
import { matchCidrList, matchFromPatterns } from '../../src/address-match.js';
import { takeAuthFailure } from '../../src/auth-policy.js';
import { applySessionRestrictions, mergePermissions } from '../../src/restrictions.js';
import { waitFor } from '../helpers/harness.js';
import { KeyLab } from '../helpers/certs.js';

const lab = new KeyLab();
after(() => lab.cleanup());
const a = lab.key('a');
const b = lab.key('b');
const c = lab.key('c');
const ca = lab.key('ca');

function fakeCtx(
  user = 'alice',
  remoteAddress = '127.0.0.1',
  server: EventEmitter = new EventEmitter(),
): Context & { permissions: Permissions } {
  return { user, remoteAddress, server, permissions: { criticalOptions: {}, extensions: {} } } as unknown as Context & {
    permissions: Permissions;
  };
}

describe('parseKeyOptions', () => {
  it('with no options everything is permitted and nothing forced', () => {
    const o = parseKeyOptions([]);
    assert.deepEqual(Object.values(o.permits), [true, true, true, true, true]);
    assert.equal(o.command, undefined);
    assert.equal(o.certAuthority, false);
  });

  it('restrict turns every permit off at its position; later options re-enable (sshd order)', () => {
    const o = parseKeyOptions(['restrict', 'pty', 'port-forwarding']);
    assert.deepEqual(o.permits, { pty: true, 'port-forwarding': true, 'agent-forwarding': false, 'X11-forwarding': false, 'user-rc': false });
    assert.equal(parseKeyOptions(['pty', 'restrict']).permits.pty, false);
    assert.equal(parseKeyOptions(['no-pty']).permits.pty, false);
    assert.equal(parseKeyOptions(['NO-PTY', 'No-Agent-Forwarding']).permits['agent-forwarding'], false, 'case-insensitive names');
    assert.equal(parseKeyOptions(['no-X11-forwarding']).permits['X11-forwarding'], false);
  });

  it('values: quotes removed, \\" unescaped, commas and blanks kept', () => {
    const o = parseKeyOptions(['command="echo \\"a, b\\""', 'from="10.0.0.0/8,!10.0.0.1"', 'environment="A=1"', 'environment="A=2"']);
    assert.equal(o.command, 'echo "a, b"');
    assert.equal(o.from, '10.0.0.0/8,!10.0.0.1');
    assert.deepEqual(o.environment, ['A=1'], 'the first of a name wins');
    const p = parseKeyOptions(['permitopen="localhost:80"', 'permitopen="[::1]:*"', 'permitlisten="8080"', 'permitlisten="*:9000"']);
    assert.deepEqual(p.permitOpen, ['localhost:80', '[::1]:*']);
    assert.deepEqual(p.permitListen, ['8080', '*:9000']);
    assert.deepEqual(parseKeyOptions(['cert-authority', 'principals="alice,ops"']).principals, ['alice', 'ops']);
  });

  it('expiry-time: YYYYMMDD, YYYYMMDDHHMM[SS], local or Z for UTC', () => {
    assert.equal(parseKeyOptions(['expiry-time="20300102Z"']).expiryTime, Date.UTC(2030, 0, 2));
    assert.equal(parseKeyOptions(['expiry-time="203001021530Z"']).expiryTime, Date.UTC(2030, 0, 2, 15, 30));
    assert.equal(parseKeyOptions(['expiry-time="20300102153045"']).expiryTime, new Date(2030, 0, 2, 15, 30, 45).getTime());
    for (const bad of ['2030', '20301302', '20300230', '203001022560', 'tomorrow']) {
      assert.throws(() => parseKeyOptions([`expiry-time="${bad}"`]), KeyParseError, bad);
    }
  });

  it('bad lines are refused as sshd refuses them', () => {
    for (const bad of [
      ['frobnicate'],
      ['verify-required'],
      ['no-pty="yes"'],
      ['command'],
      ['principals="alice"'],
      ['environment="=x"'],
      ['environment="A B=x"'],
      ['permitopen="nohost"'],
      ['from="10.0.0.1/99"'],
      ['command="a"', 'command="b"'],
      ['command=unquoted'],
    ]) {
      assert.throws(() => parseKeyOptions(bad), KeyParseError, bad.join(','));
    }
    assert.doesNotThrow(() => parseKeyOptions(['no-touch-required', 'tunnel="0"']));
  });
});

describe('address patterns', () => {
  it('from=: wildcards, CIDR, negation, IPv6 and IPv4-mapped IPv6', () => {
    assert.equal(matchFromPatterns('10.1.2.3', '10.*'), true);
    assert.equal(matchFromPatterns('10.1.2.3', '10.1.2.?'), true);
    assert.equal(matchFromPatterns('10.1.2.33', '10.1.2.?'), false);
    assert.equal(matchFromPatterns('::ffff:10.1.2.3', '10.1.2.3'), true);
    assert.equal(matchFromPatterns('::ffff:10.1.2.3', '10.0.0.0/8'), true);
    assert.equal(matchFromPatterns('10.9.9.9', '10.0.0.0/8,!10.9.0.0/16'), false, 'a negated match denies');
    assert.equal(matchFromPatterns('10.8.9.9', '!10.9.0.0/16,10.0.0.0/8'), true);
    assert.equal(matchFromPatterns('10.8.9.9', '!10.9.0.0/16'), false, 'only negations: no positive match');
    assert.equal(matchFromPatterns('2001:db8::7', '2001:db8::/32'), true);
    assert.equal(matchFromPatterns('2001:DB8::7', '2001:db8::*'), true);
    assert.equal(matchFromPatterns('::1', '127.0.0.1'), false);
    assert.equal(matchFromPatterns('10.0.0.1', '10.0.0.0/33'), undefined, 'a bad CIDR entry is an error');
  });

  it('source-address: CIDR list, no wildcards, host bits must be zero', () => {
    assert.equal(matchCidrList('192.0.2.7', '192.0.2.0/24'), true);
    assert.equal(matchCidrList('192.0.2.7', '192.0.2.7'), true);
    assert.equal(matchCidrList('::ffff:192.0.2.7', '192.0.2.0/24'), true);
    assert.equal(matchCidrList('192.0.3.7', '192.0.2.0/24,::1'), false);
    assert.equal(matchCidrList('::1', '192.0.2.0/24,::1/128'), true);
    assert.equal(matchCidrList('192.0.2.7', '192.0.2.1/24'), undefined);
    assert.equal(matchCidrList('192.0.2.7', '192.0.2.*'), undefined);
    assert.equal(matchCidrList('192.0.2.7', ''), undefined);
  });
});

describe('authorizedKeysHandler (text)', () => {
  const text = [
    '# comment',
    `${a.line}`,
    `restrict,pty,command="echo forced",environment="LANG=C",permitopen="db:5432" ${b.line}`,
    `from="10.0.0.0/8" ${c.line}`,
    `cert-authority,principals="ops",no-port-forwarding ${ca.line}`,
  ].join('\n');
  const handler = authorizedKeysHandler({ text });

  it('a plain line lets its key in with no restriction', async () => {
    const ctx = fakeCtx();
    assert.equal(await handler(ctx, a.key), true);
    assert.deepEqual(ctx.permissions, { criticalOptions: {}, extensions: {} });
    assert.equal(isPermitted(ctx, 'pty'), true);
    assert.equal(portForwardingAllowed(ctx, 'anywhere', 1), true);
  });

  it('options become permissions: restrictions, forced command, environment, permitopen', async () => {
    const ctx = fakeCtx();
    assert.equal(await handler(ctx, b.key), true);
    assert.equal(forcedCommand(ctx), 'echo forced');
    assert.equal(isPermitted(ctx, 'pty'), true);
    assert.equal(isPermitted(ctx, 'agent-forwarding'), false);
    assert.equal(portForwardingAllowed(ctx, 'db', 5432), false, 'restrict also removed port-forwarding');
    assert.equal(ctx.permissions.extensions[PERMISSION_KEYS.environment], 'LANG=C');
    assert.equal(ctx.permissions.extensions[PERMISSION_KEYS.permitOpen], 'db:5432');
  });

  it('from= is enforced against the client address (IPv4-mapped too)', async () => {
    assert.equal(await handler(fakeCtx('alice', '127.0.0.1'), c.key), false);
    assert.equal(takeAuthFailure(fakeCtx()), undefined);
    const denied = fakeCtx('alice', '127.0.0.1');
    await handler(denied, c.key);
    assert.equal(takeAuthFailure(denied), 'source-address');
    assert.equal(await handler(fakeCtx('alice', '::ffff:10.2.3.4'), c.key), true);
  });

  it('an unknown key is refused whatever the user (no user oracle)', async () => {
    for (const user of ['alice', 'root', 'nobody-at-all']) {
      const ctx = fakeCtx(user);
      assert.equal(await handler(ctx, lab.key('stranger').key), false);
      assert.equal(takeAuthFailure(ctx), 'key-not-authorized');
    }
  });

  it('cert-authority: a certificate of that CA with a listed principal, options combined', async () => {
    const cert = lab.cert('a', 'ca', { principals: ['ops'], options: ['force-command=uptime'] }).key;
    const ctx = fakeCtx('anyone');
    assert.equal(await handler(ctx, cert), true);
    assert.equal(forcedCommand(ctx), 'uptime');
    assert.equal(isPermitted(ctx, 'pty'), true, 'the certificate permits it');
    assert.equal(isPermitted(ctx, 'port-forwarding'), false, 'the line forbids it');
    assert.equal(ctx.permissions.criticalOptions['force-command'], 'uptime');
  });

  it('a certificate never matches a plain line, nor a plain key a cert-authority line', async () => {
    const certOfA = lab.cert('a', 'b', { principals: ['alice'] }).key;
    assert.equal(await handler(fakeCtx(), certOfA), false);
    assert.equal(await handler(fakeCtx(), ca.key), false);
    const wrongPrincipal = fakeCtx();
    assert.equal(await handler(wrongPrincipal, lab.cert('a', 'ca', { principals: ['alice'] }).key), false);
    assert.equal(takeAuthFailure(wrongPrincipal), 'certificate-principal');
  });

  it('a certificate force-command different from the line command is a conflict', async () => {
    const h = authorizedKeysHandler({ text: `cert-authority,command="one" ${ca.line}` });
    const ctx = fakeCtx();
    assert.equal(await h(ctx, lab.cert('a', 'ca', { options: ['force-command=two'] }).key), false);
    assert.equal(takeAuthFailure(ctx), 'conflicting-permissions');
    assert.equal(await h(fakeCtx(), lab.cert('a', 'ca', { options: ['force-command=one'] }).key), true);
  });

  it('expiry-time, and isRevoked for certificates', async () => {
    const h = authorizedKeysHandler({
      text: `expiry-time="20200101" ${a.line}\ncert-authority ${ca.line}`,
      isRevoked: (cert) => cert.keyId === 'bad',
      clock: () => Date.UTC(2025, 0, 1),
    });
    const ctx = fakeCtx();
    assert.equal(await h(ctx, a.key), false);
    assert.equal(takeAuthFailure(ctx), 'key-expired');
    const revoked = fakeCtx();
    assert.equal(await h(revoked, lab.cert('b', 'ca', { id: 'bad' }).key), false);
    assert.equal(takeAuthFailure(revoked), 'certificate-revoked');
    assert.equal(await h(fakeCtx(), lab.cert('b', 'ca', { id: 'good' }).key), true);
  });

  it('a bad line is skipped and reported; the other lines work', async () => {
    const errors: Error[] = [];
    const h = authorizedKeysHandler({ text: `frob ${a.line}\n${b.line}\nnot a key`, onError: (e) => errors.push(e) });
    assert.equal(await h(fakeCtx(), a.key), false);
    assert.equal(await h(fakeCtx(), b.key), true);
    assert.equal(errors.length, 2);
    assert.match(errors[0]!.message, /line 1/);
  });

  it('needs exactly one of path and text', () => {
    assert.throws(() => authorizedKeysHandler({}), /exactly one/);
    assert.throws(() => authorizedKeysHandler({ text: '', path: '/x' }), /exactly one/);
  });
});

describe('authorizedKeysHandler (file)', () => {
  it('sees edits, editor-style replacements and deletion without a restart; the watcher closes with the server', async () => {
    const file = join(lab.dir, 'authorized_keys');
    writeFileSync(file, `${a.line}\n`);
    const errors: Error[] = [];
    const h = authorizedKeysHandler({ path: file, onError: (e) => errors.push(e) });
    const server = new EventEmitter();
    const ctx = (): Context & { permissions: Permissions } => fakeCtx('alice', '127.0.0.1', server);
    assert.equal(h.watching, false, 'lazy: no watcher before first use');
    assert.equal(await h(ctx(), a.key), true);
    assert.equal(await h(ctx(), b.key), false);
    assert.equal(h.watching, true);
    writeFileSync(file, `${a.line}\n${b.line}\n`); // in place
    assert.equal(await h(ctx(), b.key), true);
    writeFileSync(`${file}.tmp`, `no-pty ${b.line}\n`); // as editors do: a new file renamed over
    renameSync(`${file}.tmp`, file);
    const c1 = ctx();
    assert.equal(await h(c1, b.key), true);
    assert.equal(isPermitted(c1, 'pty'), false);
    assert.equal(await h(ctx(), a.key), false);
    rmSync(file);
    assert.equal(await h(ctx(), b.key), false, 'no file, no keys');
    assert.equal(errors.length, 1);
    writeFileSync(file, `${a.line}\n`);
    await waitFor(() => true);
    assert.equal(await h(ctx(), a.key), true);
    server.emit('close');
    assert.equal(h.watching, false);
    assert.equal(await h(fakeCtx(), a.key), true, 'still works; the next server reopens the watcher');
    assert.equal(h.watching, true);
    h.close();
    assert.equal(h.watching, false);
  });
});

describe('restrictions', () => {
  const restricted = (permits: string[], extra: Record<string, string> = {}): Permissions => ({
    criticalOptions: {},
    extensions: { [PERMISSION_KEYS.restricted]: '', ...Object.fromEntries(permits.map((p) => [`permit-${p}`, ''])), ...extra },
  });

  it('portForwardingAllowed honours permit-port-forwarding, permitopen and permitlisten', () => {
    assert.equal(portForwardingAllowed(restricted([]), 'h', 1), false);
    const p = restricted(['port-forwarding'], { [PERMISSION_KEYS.permitOpen]: 'db:5432 [::1]:* *:80' });
    assert.equal(portForwardingAllowed(p, 'db', 5432), true);
    assert.equal(portForwardingAllowed(p, 'DB', 5432), true);
    assert.equal(portForwardingAllowed(p, 'db', 5433), false);
    assert.equal(portForwardingAllowed(p, '::1', 22), true);
    assert.equal(portForwardingAllowed(p, 'web', 80), true);
    assert.equal(portForwardingAllowed(p, 'web', 80, 'remote'), true, 'permitopen does not limit -R');
    const l = { criticalOptions: {}, extensions: { [PERMISSION_KEYS.permitListen]: '8080 localhost:9000' } };
    assert.equal(portForwardingAllowed(l, '0.0.0.0', 8080, 'remote'), true);
    assert.equal(portForwardingAllowed(l, 'localhost', 9000, 'remote'), true);
    assert.equal(portForwardingAllowed(l, '0.0.0.0', 9000, 'remote'), false);
  });

  it('a forced command replaces the request and keeps the original in SSH_ORIGINAL_COMMAND', () => {
    const session = {
      permissions: { criticalOptions: { 'force-command': 'menu' }, extensions: { [PERMISSION_KEYS.environment]: 'LANG=C\nX=1' } },
      environ: ['LANG=en', 'SSH_ORIGINAL_COMMAND=spoofed'],
    };
    assert.deepEqual(applySessionRestrictions(session, 'exec', 'rm -rf /'), { type: 'exec', arg: 'menu' });
    assert.deepEqual(session.environ, ['LANG=C', 'X=1', 'SSH_ORIGINAL_COMMAND=rm -rf /']);
    assert.deepEqual(applySessionRestrictions(session, 'shell', ''), { type: 'exec', arg: 'menu' });
    assert.deepEqual(session.environ, ['LANG=C', 'X=1'], 'no SSH_ORIGINAL_COMMAND for a shell');
    assert.deepEqual(applySessionRestrictions(session, 'subsystem', 'sftp'), { type: 'exec', arg: 'menu' });
    assert.ok(session.environ.includes('SSH_ORIGINAL_COMMAND=sftp'));
    const free = { permissions: { criticalOptions: {}, extensions: {} }, environ: [] };
    assert.deepEqual(applySessionRestrictions(free, 'subsystem', 'sftp'), { type: 'subsystem', arg: 'sftp' });
  });

  it('mergePermissions never widens: permits intersect, lists intersect, forced commands must agree', () => {
    const free: Permissions = { criticalOptions: {}, extensions: { note: 'x' } };
    const m = mergePermissions(free, restricted(['pty', 'port-forwarding'], { [PERMISSION_KEYS.permitOpen]: 'a:1 b:2' }))!;
    assert.equal(isPermitted(m, 'pty'), true);
    assert.equal(isPermitted(m, 'agent-forwarding'), false);
    assert.equal(m.extensions.note, 'x');
    const m2 = mergePermissions(m, restricted(['pty'], { [PERMISSION_KEYS.permitOpen]: 'b:2' }))!;
    assert.equal(isPermitted(m2, 'port-forwarding'), false);
    assert.equal(m2.extensions[PERMISSION_KEYS.permitOpen], 'b:2');
    const cmd = (c: string): Permissions => ({ criticalOptions: { 'force-command': c }, extensions: {} });
    assert.equal(mergePermissions(cmd('a'), cmd('b')), undefined);
    assert.equal(forcedCommand(mergePermissions(cmd('a'), free)!), 'a');
  });
});
