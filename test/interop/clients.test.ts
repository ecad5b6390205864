/**
 * Interop with other real SSH clients: PuTTY's `plink`, dropbear's `dbclient` and paramiko
 * (a python3 script run as a child process). When a client is missing the test fails under CI
 * (CI installs them) and is skipped elsewhere.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delay, run, startServer, type TestServer } from '../helpers/harness.js';
import { keysEqual, parseAuthorizedKey, type ServerOptions, type Signal } from '../../src/index.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A python3 that can import paramiko (Debian's python3-paramiko lives under /usr/bin/python3). */
const python = ['/usr/bin/python3', 'python3'].find(
  (py) => spawnSync(py, ['-c', 'import paramiko']).status === 0,
);

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

/** Whether the tool is usable; fails the test under CI when it is not, skips it otherwise. */
function need(t: TestContext, tool: string, available: boolean): boolean {
  if (available) return true;
  const msg = `${tool} is not installed (Debian: putty-tools, dropbear-bin, python3-paramiko)`;
  if (process.env.CI) assert.fail(`${msg}; CI must install it`);
  t.skip(msg);
  return false;
}

let tmp: string;
/** A host key made by ssh-keygen, and its SHA256 fingerprint as ssh-keygen -l prints it. */
let hostKey: Buffer;
let hostFingerprint: string;

function keygen(name: string, type = 'ed25519'): { priv: string; pub: string } {
  const priv = join(tmp, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', priv]);
  assert.equal(r.status, 0, String(r.stderr));
  return { priv, pub: readFileSync(`${priv}.pub`, 'utf8') };
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glidessh-clients-'));
  const host = keygen('host_ed25519');
  hostKey = readFileSync(host.priv);
  const fp = spawnSync('ssh-keygen', ['-lf', `${host.priv}.pub`], { encoding: 'utf8' });
  const m = /SHA256:\S+/.exec(fp.stdout);
  assert.ok(m, fp.stdout + fp.stderr);
  hostFingerprint = m[0];
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs a test body against a fresh server with the ssh-keygen host key, and always closes it. */
async function withServer(options: ServerOptions, body: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startServer({ hostKeys: [hostKey], ...options });
  try {
    await body(srv);
  } finally {
    await srv.close();
  }
}

/** A handler printing what it got, with stderr and an exit code taken from the command ("code N"). */
const reportingHandler: ServerOptions['handler'] = async (s) => {
  s.write(`user=${s.user} cmd=${JSON.stringify(s.command)}\n`);
  s.stderr.write('to-stderr\n');
  await s.exit(Number(s.command[1] ?? 0));
};

// ---------------------------------------------------------------------------------------------

describe('PuTTY plink', () => {
  const plink = (port: number, args: string[], opts: { input?: Buffer | string; timeoutMs?: number } = {}) =>
    run('plink', ['-ssh', '-batch', '-no-antispoof', '-P', String(port), '-hostkey', hostFingerprint, ...args], opts);

  it('runs an exec with exact stdout, separate stderr and exit codes 0 and 7, pinned to the configured host key', async (t) => {
    if (!need(t, 'plink', has('plink'))) return;
    await withServer({ handler: reportingHandler }, async ({ port, errors }) => {
      for (const code of [0, 7]) {
        const r = await plink(port, ['-l', 'putty', '127.0.0.1', `code ${code}`]);
        assert.equal(r.code, code, r.stderr.toString());
        assert.equal(r.stdout.toString(), `user=putty cmd=["code","${code}"]\n`);
        assert.equal(r.stderr.toString(), 'to-stderr\n');
      }
      // The server really presents the configured key: plink refuses when another one is pinned.
      const other = keygen('plink_not_the_host_key');
      const otherFp = /SHA256:\S+/.exec(spawnSync('ssh-keygen', ['-lf', `${other.priv}.pub`], { encoding: 'utf8' }).stdout)![0];
      const wrong = await run('plink', ['-ssh', '-batch', '-P', String(port), '-hostkey', otherFp, '-l', 'putty', '127.0.0.1', 'code 0']);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr.toString(), /Host key not in manually configured list/);
      assert.equal(wrong.stdout.toString(), '');
      assert.deepEqual(errors, []);
    });
  });

  it('round-trips 4 MiB of stdin and answers every winadj@putty want-reply request sent after exec started', async (t) => {
    if (!need(t, 'plink', has('plink'))) return;
    // A -L forwarding makes plink leave "simple" mode, so it sends a winadj@putty.projects.tartarus.org
    // request (want-reply) with its window adjustments; its packet log shows the replies.
    const lport = await freePort();
    const log = join(tmp, 'plink-winadj.log');
    await withServer(
      {
        handler: async (s) => {
          for await (const c of s) s.write(c);
          if (s.writableNeedDrain) await once(s, 'drain');
          await delay(500); // let the client's last window adjustments arrive before the channel closes
        },
      },
      async ({ port, errors }) => {
        const input = randomBytes(4 * 1024 * 1024);
        const r = await plink(
          port,
          ['-L', `127.0.0.1:${lport}:127.0.0.1:9`, '-sshlog', log, '-logoverwrite', '-l', 'putty', '127.0.0.1', 'echo'],
          { input, timeoutMs: 30_000 },
        );
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(r.stdout.length, input.length);
        assert.equal(sha256(r.stdout), sha256(input));
        const lines = readFileSync(log, 'latin1').split('\n');
        let winadj = 0;
        let replies = 0;
        lines.forEach((line, i) => {
          if (/^Outgoing packet .*\(SSH2_MSG_CHANNEL_REQUEST\)/.test(line) && /winadj/.test(lines[i + 1] ?? '')) winadj++;
          if (/^Incoming packet .*\(SSH2_MSG_CHANNEL_(SUCCESS|FAILURE)\)/.test(line)) replies++;
        });
        assert.ok(winadj > 0, 'plink sent winadj requests');
        assert.equal(replies, winadj + 1, `one reply for exec and one per winadj request (${winadj})`);
        assert.deepEqual(errors, []);
      },
    );
  });

  it('logs in with a password (-pwfile); a wrong password is refused', async (t) => {
    if (!need(t, 'plink', has('plink'))) return;
    const good = join(tmp, 'plink-pw-good');
    const bad = join(tmp, 'plink-pw-bad');
    writeFileSync(good, 'p4ss\n');
    writeFileSync(bad, 'nope\n');
    await withServer(
      { passwordHandler: (ctx, pw) => ctx.user === 'putty' && pw === 'p4ss', handler: reportingHandler },
      async ({ port }) => {
        const ok = await plink(port, ['-pwfile', good, '-l', 'putty', '127.0.0.1', 'code 0']);
        assert.equal(ok.code, 0, ok.stderr.toString());
        assert.equal(ok.stdout.toString(), 'user=putty cmd=["code","0"]\n');
        const denied = await plink(port, ['-pwfile', bad, '-l', 'putty', '127.0.0.1', 'code 0']);
        assert.notEqual(denied.code, 0);
        assert.equal(denied.stdout.toString(), '');
      },
    );
  });

  it('logs in with Ed25519 and RSA keys (puttygen .ppk) that the publicKeyHandler accepts; another key is refused', async (t) => {
    if (!need(t, 'plink/puttygen', has('plink') && has('puttygen'))) return;
    const ppk = (name: string, type: string): { ppk: string; pub: string } => {
      const k = keygen(name, type);
      const r = spawnSync('puttygen', [k.priv, '-O', 'private', '-o', `${k.priv}.ppk`]);
      assert.equal(r.status, 0, String(r.stderr));
      return { ppk: `${k.priv}.ppk`, pub: k.pub };
    };
    const ed = ppk('plink_ed25519', 'ed25519');
    const rsa = ppk('plink_rsa', 'rsa');
    const other = ppk('plink_other', 'ed25519');
    const allowed = [parseAuthorizedKey(ed.pub).key, parseAuthorizedKey(rsa.pub).key];
    await withServer(
      {
        publicKeyHandler: (_ctx, key) => allowed.some((a) => keysEqual(a, key)),
        handler: (s) => void s.write(`${s.publicKey?.type} ${s.publicKey?.fingerprint()}\n`),
      },
      async ({ port }) => {
        for (const [k, i] of [
          [ed, 0],
          [rsa, 1],
        ] as const) {
          const r = await plink(port, ['-noagent', '-i', k.ppk, '-l', 'putty', '127.0.0.1', 'whoami']);
          assert.equal(r.code, 0, r.stderr.toString());
          assert.equal(r.stdout.toString(), `${allowed[i]!.type} ${allowed[i]!.fingerprint()}\n`);
        }
        const denied = await plink(port, ['-noagent', '-i', other.ppk, '-l', 'putty', '127.0.0.1', 'whoami']);
        assert.notEqual(denied.code, 0);
        assert.equal(denied.stdout.toString(), '');
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('dropbear dbclient', () => {
  const dbclient = (port: number, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) =>
    run('dbclient', ['-y', '-y', '-p', String(port), ...args], opts);
  /** dbclient prints a host-key caution on stderr with -y -y; drop it. */
  const stderrOf = (b: Buffer): string =>
    b
      .toString()
      .split('\n')
      .filter((l) => !/skipping hostkey check/.test(l))
      .join('\n')
      .replace(/^\n+/, '');

  it('runs an exec with exact stdout, separate stderr and exit codes 0 and 7', async (t) => {
    if (!need(t, 'dbclient', has('dbclient'))) return;
    await withServer({ handler: reportingHandler }, async ({ port, errors }) => {
      for (const code of [0, 7]) {
        const r = await dbclient(port, ['drop@127.0.0.1', `code ${code}`]);
        assert.equal(r.code, code, r.stderr.toString());
        assert.equal(r.stdout.toString(), `user=drop cmd=["code","${code}"]\n`);
        assert.equal(stderrOf(r.stderr), 'to-stderr\n');
      }
      assert.deepEqual(errors, []);
    });
  });

  it('answers keepalive@openssh.com global requests while a session runs: dbclient -K 1 survives a 4 s silent command', async (t) => {
    if (!need(t, 'dbclient', has('dbclient'))) return;
    await withServer(
      {
        handler: async (s) => {
          await delay(4000);
          s.write('done\n');
        },
      },
      async ({ port }) => {
        const r = await dbclient(port, ['-K', '1', 'drop@127.0.0.1', 'sleep']);
        assert.doesNotMatch(r.stderr.toString(), /[Kk]eepalive/);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(r.stdout.toString(), 'done\n');
      },
    );
  });

  it('logs in with a password (DROPBEAR_PASSWORD); a wrong password is refused', async (t) => {
    if (!need(t, 'dbclient', has('dbclient'))) return;
    const attempts: string[] = [];
    let sessions = 0;
    await withServer(
      {
        passwordHandler: (ctx, pw) => {
          attempts.push(pw);
          return ctx.user === 'drop' && pw === 'p4ss';
        },
        handler: async (s) => {
          sessions++;
          await reportingHandler!(s);
        },
      },
      async ({ port }) => {
        const ok = await dbclient(port, ['drop@127.0.0.1', 'code 0'], { env: { ...process.env, DROPBEAR_PASSWORD: 'p4ss' } });
        assert.equal(ok.code, 0, ok.stderr.toString());
        assert.equal(ok.stdout.toString(), 'user=drop cmd=["code","0"]\n');
        assert.deepEqual(attempts, ['p4ss']);
        // dbclient retries (with empty passwords, having no tty) until the server disconnects
        // after maxAuthTries; it exits 0 on a received DISCONNECT, so the exit code says nothing.
        const denied = await dbclient(port, ['drop@127.0.0.1', 'code 0'], {
          env: { ...process.env, DROPBEAR_PASSWORD: 'nope' },
        });
        assert.equal(denied.stdout.toString(), '');
        assert.match(denied.stderr.toString(), /exited/);
        assert.equal(attempts[1], 'nope');
        assert.ok(!attempts.slice(1).includes('p4ss'));
        assert.equal(sessions, 1, 'no session ran for the wrong password');
      },
    );
  });

  it('logs in with Ed25519 and RSA keys (dropbearconvert) that the publicKeyHandler accepts; another key is refused', async (t) => {
    if (!need(t, 'dbclient/dropbearconvert', has('dbclient') && has('dropbearconvert'))) return;
    const dbkey = (name: string, type: string): { db: string; pub: string } => {
      const k = keygen(name, type);
      const r = spawnSync('dropbearconvert', ['openssh', 'dropbear', k.priv, `${k.priv}.db`]);
      assert.equal(r.status, 0, String(r.stderr));
      return { db: `${k.priv}.db`, pub: k.pub };
    };
    const ed = dbkey('db_ed25519', 'ed25519');
    const rsa = dbkey('db_rsa', 'rsa');
    const other = dbkey('db_other', 'ed25519');
    const allowed = [parseAuthorizedKey(ed.pub).key, parseAuthorizedKey(rsa.pub).key];
    await withServer(
      {
        publicKeyHandler: (_ctx, key) => allowed.some((a) => keysEqual(a, key)),
        handler: (s) => void s.write(`${s.publicKey?.type} ${s.publicKey?.fingerprint()}\n`),
      },
      async ({ port }) => {
        // No password prompt may succeed by accident.
        const env = { ...process.env, DROPBEAR_PASSWORD: 'x' };
        for (const [k, i] of [
          [ed, 0],
          [rsa, 1],
        ] as const) {
          const r = await dbclient(port, ['-i', k.db, 'drop@127.0.0.1', 'whoami'], { env });
          assert.equal(r.code, 0, r.stderr.toString());
          assert.equal(r.stdout.toString(), `${allowed[i]!.type} ${allowed[i]!.fingerprint()}\n`);
        }
        const denied = await dbclient(port, ['-i', other.db, 'drop@127.0.0.1', 'whoami'], { env });
        assert.notEqual(denied.code, 0);
        assert.equal(denied.stdout.toString(), '');
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('paramiko', () => {
  /** Runs a python script (with paramiko) given the server port; its last stdout line is JSON. */
  async function py(script: string, port: number, extra: string[] = []): Promise<Record<string, unknown>> {
    const r = await run(python!, ['-c', script, String(port), ...extra], {
      timeoutMs: 20_000,
      env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    });
    const lines = r.stdout.toString().trim().split('\n');
    assert.equal(r.code, 0, `python exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  }

  const PRELUDE = `
import json, socket, sys, time
import paramiko
port = int(sys.argv[1])
def client(user, **kw):
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect('127.0.0.1', port=port, username=user, look_for_keys=False, allow_agent=False,
              timeout=10, banner_timeout=10, auth_timeout=10, **kw)
    return c
`;

  it('runs exec_command with password auth: stdout, stderr and exit status 0 and 7', async (t) => {
    if (!need(t, 'python3-paramiko', python !== undefined)) return;
    const script = `${PRELUDE}
c = client('para', password='p4ss')
out = []
for code in (0, 7):
    _, so, se = c.exec_command('code %d' % code, timeout=10)
    out.append({'stdout': so.read().decode(), 'stderr': se.read().decode(), 'status': so.channel.recv_exit_status()})
print(json.dumps({'results': out, 'hostkey': c.get_transport().get_remote_server_key().get_name()}))
`;
    await withServer(
      { passwordHandler: (ctx, pw) => ctx.user === 'para' && pw === 'p4ss', handler: reportingHandler },
      async ({ port, errors }) => {
        const res = await py(script, port);
        assert.deepEqual(res.results, [
          { stdout: 'user=para cmd=["code","0"]\n', stderr: 'to-stderr\n', status: 0 },
          { stdout: 'user=para cmd=["code","7"]\n', stderr: 'to-stderr\n', status: 7 },
        ]);
        assert.equal(res.hostkey, 'ssh-ed25519');
        assert.deepEqual(errors, []);
      },
    );
  });

  it('answers a keepalive@openssh.com global request and a want-reply channel request sent after exec started', async (t) => {
    if (!need(t, 'python3-paramiko', python !== undefined)) return;
    const script = `${PRELUDE}
from paramiko.message import Message
from paramiko.common import cMSG_CHANNEL_REQUEST
c = client('para', password='p4ss')
tr = c.get_transport()
chan = tr.open_session(timeout=10)
chan.settimeout(10)
chan.exec_command('wait-for-signal')
buf = b''
while b'ready\\n' not in buf:
    d = chan.recv(1024)
    if not d: break
    buf += d
t0 = time.time()
g = tr.global_request('keepalive@openssh.com', wait=True)
global_secs = time.time() - t0
# A channel request with want-reply (paramiko has no public API for 'signal').
m = Message()
m.add_byte(cMSG_CHANNEL_REQUEST)
m.add_int(chan.remote_chanid)
m.add_string('signal')
m.add_boolean(True)
m.add_string('USR1')
chan._event_pending()
tr._send_user_message(m)
chan._wait_for_event()  # raises if the channel closed; hangs (then times out) if never answered
while True:
    d = chan.recv(1024)
    if not d: break
    buf += d
print(json.dumps({'global': None if g is None else 'success', 'global_secs': global_secs,
                  'out': buf.decode(), 'status': chan.recv_exit_status()}))
`;
    await withServer(
      {
        passwordHandler: () => true,
        handler: async (s) => {
          const got = new Promise<Signal>((resolve) => s.once('signal', resolve));
          s.write('ready\n');
          s.write(`signal=${await got}\n`);
          await s.exit(3);
        },
      },
      async ({ port, errors }) => {
        const res = await py(script, port);
        assert.equal(res.global, null, 'an unhandled global request is answered with failure');
        assert.ok((res.global_secs as number) < 5, `global request answered in ${res.global_secs}s`);
        assert.equal(res.out, 'ready\nsignal=USR1\n');
        assert.equal(res.status, 3);
        assert.deepEqual(errors, []);
      },
    );
  });

  it('logs in on a second password attempt after a failed one (a new SERVICE_REQUEST per attempt)', async (t) => {
    if (!need(t, 'python3-paramiko', python !== undefined)) return;
    const script = `${PRELUDE}
sock = socket.create_connection(('127.0.0.1', port), timeout=10)
tr = paramiko.Transport(sock)
tr.start_client(timeout=10)
try:
    tr.auth_password('para', 'wrong')
    first = 'accepted'
except paramiko.AuthenticationException:
    first = 'rejected'
tr.auth_password('para', 'p4ss')
chan = tr.open_session(timeout=10)
chan.exec_command('after-retry')
out = chan.makefile('rb').read().decode()
print(json.dumps({'first': first, 'authenticated': tr.is_authenticated(), 'out': out,
                  'status': chan.recv_exit_status()}))
`;
    const attempts: string[] = [];
    await withServer(
      {
        passwordHandler: (ctx, pw) => {
          attempts.push(pw);
          return ctx.user === 'para' && pw === 'p4ss';
        },
        handler: reportingHandler,
      },
      async ({ port }) => {
        const res = await py(script, port);
        assert.deepEqual(res, {
          first: 'rejected',
          authenticated: true,
          out: 'user=para cmd=["after-retry"]\n',
          status: 0,
        });
        assert.deepEqual(attempts, ['wrong', 'p4ss']);
      },
    );
  });

  it('logs in with an ssh-keygen Ed25519 key the publicKeyHandler accepts; another key is refused', async (t) => {
    if (!need(t, 'python3-paramiko', python !== undefined)) return;
    const good = keygen('para_good');
    const bad = keygen('para_bad');
    const authorized = parseAuthorizedKey(good.pub).key;
    const script = `${PRELUDE}
res = {}
for name, path in (('good', sys.argv[2]), ('bad', sys.argv[3])):
    try:
        c = client('para', key_filename=path)
        _, so, _ = c.exec_command('key', timeout=10)
        res[name] = so.read().decode()
        c.close()
    except paramiko.AuthenticationException:
        res[name] = 'denied'
print(json.dumps(res))
`;
    await withServer(
      {
        publicKeyHandler: (_ctx, key) => keysEqual(key, authorized),
        handler: (s) => void s.write(`${s.publicKey?.fingerprint()}\n`),
      },
      async ({ port }) => {
        const res = await py(script, port, [good.priv, bad.priv]);
        assert.deepEqual(res, { good: `${authorized.fingerprint()}\n`, bad: 'denied' });
      },
    );
  });
});
