/**
 * Interop with the real OpenSSH client (`/usr/bin/ssh`): exec, exit codes, large stdin/stdout/
 * stderr transfers, a pty on a real local terminal (util-linux `script`, tmux), env, keepalives,
 * ident, banner, public-key and password login, subsystems and denied forwarding.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { SSH_ARGS, delay, run, ssh, startServer, waitFor, type ProcResult, type TestServer } from '../helpers/harness.js';
import { keysEqual, parseAuthorizedKey, type Session } from '../../src/index.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Quotes one word for /bin/sh. */
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The harness's safe ssh options with another LogLevel, then the port, options, target and command. */
function sshArgv(
  port: number,
  options: string[],
  command: string[],
  opts: { user?: string; logLevel?: string; batchMode?: boolean } = {},
): string[] {
  // ssh keeps the first value it sees for an option, so replace the harness's instead of adding.
  const base = SSH_ARGS.map((a) =>
    a.startsWith('LogLevel=')
      ? `LogLevel=${opts.logLevel ?? 'ERROR'}`
      : a === 'BatchMode=yes' && opts.batchMode === false
        ? 'BatchMode=no'
        : a,
  );
  return [...base, '-p', String(port), ...options, `${opts.user ?? 'testuser'}@127.0.0.1`, ...command];
}

/** Writes `data` in 64 KiB pieces, waiting for 'drain' whenever write() returns false. */
async function pump(w: Writable, data: Buffer): Promise<void> {
  const step = 64 * 1024;
  for (let off = 0; off < data.length; off += step) {
    if (!w.write(data.subarray(off, off + step))) await once(w, 'drain');
  }
}

/** Control characters and flags of `stty -a` output, under their RFC 4254 §8 names. */
function parseSttyA(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const chars: Record<string, string> = {
    intr: 'VINTR', quit: 'VQUIT', erase: 'VERASE', kill: 'VKILL', eof: 'VEOF', eol: 'VEOL', eol2: 'VEOL2',
    start: 'VSTART', stop: 'VSTOP', susp: 'VSUSP', rprnt: 'VREPRINT', werase: 'VWERASE', lnext: 'VLNEXT',
    discard: 'VDISCARD',
  };
  for (const m of text.matchAll(/(\w+) = ([^;]+);/g)) {
    const name = chars[m[1]!];
    if (!name) continue;
    const v = m[2]!;
    out[name] = v === '<undef>' ? 255 : v === '^?' ? 127 : v.startsWith('^') ? v.charCodeAt(1) & 0x1f : v.charCodeAt(0);
  }
  const flags = [
    'ignpar', 'parmrk', 'inpck', 'istrip', 'inlcr', 'igncr', 'icrnl', 'iuclc', 'ixon', 'ixany', 'ixoff', 'imaxbel',
    'iutf8', 'isig', 'icanon', 'xcase', 'echo', 'echoe', 'echok', 'echonl', 'noflsh', 'tostop', 'iexten', 'echoctl',
    'echoke', 'opost', 'olcuc', 'onlcr', 'ocrnl', 'onocr', 'onlret', 'parenb', 'parodd',
  ];
  const words = new Set(text.split(/\s+/));
  for (const f of flags) {
    if (words.has(f)) out[f.toUpperCase()] = 1;
    else if (words.has(`-${f}`)) out[f.toUpperCase()] = 0;
  }
  const speed = /speed (\d+) baud/.exec(text);
  if (speed) out.TTY_OP_ISPEED = out.TTY_OP_OSPEED = Number(speed[1]);
  return out;
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glidessh-openssh-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs a test body against a fresh server and always closes it. */
async function withServer(
  options: Parameters<typeof startServer>[0],
  body: (srv: TestServer) => Promise<void>,
): Promise<void> {
  const srv = await startServer(options);
  try {
    await body(srv);
  } finally {
    await srv.close();
  }
}

describe('OpenSSH client: exec', () => {
  it('delivers stdout exactly, stderr separately, and exit codes 0, 1, 3, 254, 255 as ssh exit status', async () => {
    await withServer(
      {
        handler: async (s) => {
          s.write(`out:${s.rawCommand}\n`);
          s.stderr.write(`err:${s.rawCommand}\n`);
          await s.exit(Number(s.command[1]));
        },
      },
      async ({ port, errors }) => {
        for (const code of [0, 1, 3, 254, 255]) {
          const r = await ssh(port, [`exit ${code}`]);
          assert.equal(r.code, code, `ssh exit status for "exit ${code}" (stderr: ${r.stderr})`);
          assert.equal(r.stdout.toString(), `out:exit ${code}\n`);
          assert.equal(r.stderr.toString(), `err:exit ${code}\n`);
        }
        assert.deepEqual(errors, []);
      },
    );
  });

  it('round-trips 16 MiB of random stdin through an echo handler unchanged (sha256)', async () => {
    await withServer(
      {
        handler: async (s) => {
          for await (const c of s) s.write(c);
        },
      },
      async ({ port, errors }) => {
        const input = randomBytes(16 * 1024 * 1024);
        const r = await ssh(port, ['echo'], { input, timeoutMs: 30_000 });
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(r.stdout.length, input.length);
        assert.equal(sha256(r.stdout), sha256(input));
        assert.deepEqual(errors, []);
      },
    );
  });

  it('delivers 8 MiB on stdout and 8 MiB on stderr written concurrently, both complete (sha256)', async () => {
    const outData = randomBytes(8 * 1024 * 1024);
    const errData = randomBytes(8 * 1024 * 1024);
    await withServer(
      {
        handler: async (s) => {
          await Promise.all([pump(s, outData), pump(s.stderr, errData)]);
          await s.exit(0);
        },
      },
      async ({ port, errors }) => {
        const r = await ssh(port, ['blast'], { timeoutMs: 30_000 });
        assert.equal(r.code, 0);
        assert.equal(r.stdout.length, outData.length);
        assert.equal(r.stderr.length, errData.length);
        assert.equal(sha256(r.stdout), sha256(outData));
        assert.equal(sha256(r.stderr), sha256(errData));
        assert.deepEqual(errors, []);
      },
    );
  });

  it('passes -o SetEnv=FOO=bar to session.environ', async () => {
    await withServer(
      { handler: (s) => void s.write(JSON.stringify(s.environ)) },
      async ({ port }) => {
        const r = await run('ssh', sshArgv(port, ['-o', 'SetEnv=FOO=bar GLIDE=x=y'], ['env']));
        assert.equal(r.code, 0, r.stderr.toString());
        const environ = JSON.parse(r.stdout.toString()) as string[];
        assert.ok(environ.includes('FOO=bar'), `environ: ${r.stdout}`);
        assert.ok(environ.includes('GLIDE=x=y'), `environ: ${r.stdout}`);
      },
    );
  });

  it('answers keepalive@openssh.com after the session started, so ServerAliveInterval=1/CountMax=2 survives a 4 s silent command', async () => {
    await withServer(
      {
        handler: async (s) => {
          await delay(4000);
          s.write('done\n');
          await s.exit(0);
        },
      },
      async ({ port }) => {
        const r = await run(
          'ssh',
          sshArgv(port, ['-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2'], ['sleep'], { logLevel: 'INFO' }),
        );
        assert.doesNotMatch(r.stderr.toString(), /not responding/);
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(r.stdout.toString(), 'done\n');
      },
    );
  });
});

describe('OpenSSH client: terminal', () => {
  it('-tt on a real terminal: the pty has the local size and modes (stty), and output \\n becomes \\r\\n', async () => {
    let seen: Session['pty'];
    await withServer(
      {
        handler: (s) => {
          seen = s.pty;
          s.write(`PTY ${s.pty?.window.height} ${s.pty?.window.width}\n`);
          s.write(`MODES ${JSON.stringify(s.pty?.modes ?? null)}\n`);
          s.stderr.write('STDERR-LINE\n');
          s.write('END\n');
        },
      },
      async ({ port, errors }) => {
        const sshCmd = ['ssh', ...sshArgv(port, ['-tt'], ['ptytest'])].map(shq).join(' ');
        const inner =
          'stty rows 40 cols 100 intr ^B -echo; echo "LOCALSIZE $(stty size)"; stty -a; echo LOCALEND; ' + sshCmd;
        const r = await run('script', ['-qec', inner, '/dev/null'], { timeoutMs: 15_000 });
        const raw = r.stdout.toString('latin1');
        assert.equal(r.code, 0, `script output: ${JSON.stringify(raw)}`);

        // What the local terminal says about itself.
        const size = /LOCALSIZE (\d+) (\d+)/.exec(raw);
        assert.ok(size, raw);
        const [rows, cols] = [Number(size[1]), Number(size[2])];
        assert.deepEqual([rows, cols], [40, 100]);
        const local = parseSttyA(raw.slice(raw.indexOf('LOCALSIZE'), raw.indexOf('LOCALEND')));
        assert.equal(local.VINTR, 2, 'stty intr ^B took effect locally');
        assert.equal(local.ECHO, 0, 'stty -echo took effect locally');

        // What the server saw, as printed back through the pty.
        const remote = raw.slice(raw.indexOf('LOCALEND') + 'LOCALEND'.length);
        assert.ok(
          remote.includes(`PTY ${rows} ${cols}\r\n`),
          `handler output must be "PTY ${rows} ${cols}" ending in CRLF: ${JSON.stringify(remote)}`,
        );
        // stdout and stderr share the pty, so STDERR-LINE may come before or after END.
        const modesLine = /MODES (\{.*?\})\r\n/.exec(remote);
        assert.ok(modesLine && remote.includes('END\r\n'), `handler output must end each line in CRLF: ${JSON.stringify(remote)}`);
        // stderr is translated too.
        assert.ok(remote.includes('STDERR-LINE\r\n'), JSON.stringify(remote));
        // ssh turned OPOST off locally, so any CR in the output came from the server: no bare \n.
        assert.doesNotMatch(remote, /[^\r]\n/);

        const modes = JSON.parse(modesLine[1]!) as Record<string, number>;
        assert.equal(modes.VINTR, 2);
        assert.equal(modes.ECHO, 0);
        // Every mode stty -a reports that RFC 4254 §8 names arrived with the local value.
        assert.ok(Object.keys(local).length > 30, `parsed stty -a: ${JSON.stringify(local)}`);
        for (const [name, value] of Object.entries(local)) {
          assert.equal(modes[name], value, `mode ${name}: local stty ${value}, server saw ${modes[name]}`);
        }
        assert.equal(seen?.window.height, 40);
        assert.equal(seen?.window.width, 100);
        assert.ok(seen?.term, 'the pty has a TERM');
        assert.deepEqual(errors, []);
      },
    );
  });

  it('-tt in tmux: resize-window reaches windowChanges() as 50 rows x 120 cols', async (t) => {
    if (!has('tmux')) {
      if (process.env.CI) assert.fail('tmux is not installed; CI must install it');
      t.skip('tmux is not installed (Debian: tmux)');
      return;
    }
    // A private server: its socket lives in this test's temporary directory.
    const socket = join(tmp, `tmux-glidessh-test-${process.pid}`);
    const conf = join(tmp, 'tmux.conf');
    writeFileSync(conf, 'set -g status off\nset -g remain-on-exit on\n');
    const tmux = (...args: string[]): Promise<ProcResult> => run('tmux', ['-S', socket, '-f', conf, ...args]);
    t.after(async () => {
      await tmux('kill-server');
    });
    await withServer(
      {
        handler: async (s) => {
          for await (const w of s.windowChanges()) {
            s.write(`WIN ${w.height} ${w.width}\n`);
            if (w.height === 50 && w.width === 120) break;
          }
          s.write('RESIZED\n');
          await delay(200);
        },
      },
      async ({ port }) => {
        const sshCmd = ['ssh', ...sshArgv(port, ['-tt'], ['resize'])].map(shq).join(' ');
        const started = await tmux('new-session', '-d', '-s', 'main', '-x', '100', '-y', '40', sshCmd);
        assert.equal(started.code, 0, started.stderr.toString());
        const pane = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'main')).stdout.toString();
        let text = '';
        const poll = async (re: RegExp, what: string): Promise<void> => {
          const end = Date.now() + 10_000;
          while (!re.test((text = await pane()))) {
            if (Date.now() > end) assert.fail(`timed out waiting for ${what}; pane:\n${text}`);
            await delay(50);
          }
        };
        await poll(/WIN 40 100/, 'the initial window');
        const resized = await tmux('resize-window', '-t', 'main', '-x', '120', '-y', '50');
        assert.equal(resized.code, 0, resized.stderr.toString());
        await poll(/RESIZED/, 'the resize');
        assert.match(text, /WIN 50 120/);
      },
    );
  });
});

describe('OpenSSH client: protocol details', () => {
  it('shows the ident: "remote software version glidessh" by default and the configured version', async () => {
    await withServer({ handler: (s) => void s.write('x') }, async ({ port }) => {
      const r = await ssh(port, ['-v', 'x']);
      assert.equal(r.code, 0);
      assert.match(r.stderr.toString(), /remote software version glidessh\b/);
    });
    await withServer({ version: 'MyApp_2', handler: (s) => void s.write('x') }, async ({ port }) => {
      const r = await ssh(port, ['-v', 'x']);
      assert.equal(r.code, 0);
      assert.match(r.stderr.toString(), /remote software version MyApp_2\b/);
    });
  });

  it('shows the banner option to the user before login', async () => {
    await withServer({ banner: 'Welcome\n', handler: (s) => void s.write('in\n') }, async ({ port }) => {
      const r = await run('ssh', sshArgv(port, [], ['x'], { logLevel: 'INFO' }));
      assert.equal(r.code, 0, r.stderr.toString());
      assert.match(r.stderr.toString(), /^Welcome\r?\n/m);
      assert.equal(r.stdout.toString(), 'in\n');
    });
  });

  it('runs a subsystem requested with ssh -s through subsystemHandlers; an unknown one is refused', async () => {
    await withServer(
      {
        handler: (s) => void s.write('wrong: session handler\n'),
        subsystemHandlers: {
          myproto: async (s) => {
            s.write(`subsystem=${s.subsystem} raw=${JSON.stringify(s.rawCommand)}\n`);
            for await (const c of s) s.write(String(c).toUpperCase());
          },
        },
      },
      async ({ port }) => {
        const r = await ssh(port, ['-s', 'myproto'], { input: 'hello\n' });
        assert.equal(r.code, 0, r.stderr.toString());
        assert.equal(r.stdout.toString(), 'subsystem=myproto raw=""\nHELLO\n');
        const bad = await ssh(port, ['-s', 'other'], { input: '' });
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr.toString(), /subsystem request failed/);
        assert.equal(bad.stdout.toString(), '');
      },
    );
  });

  it('denies -L (direct-tcpip) and -R (tcpip-forward) by default while the session keeps working', async () => {
    // A free local port for -L.
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const lport = (probe.address() as { port: number }).port;
    probe.close();
    await once(probe, 'close');

    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    await withServer(
      {
        handler: async (s) => {
          s.write('ready\n');
          await released;
          s.write('still-alive\n');
        },
      },
      async ({ port, errors }) => {
        const child = spawn(
          'ssh',
          sshArgv(
            port,
            ['-o', 'ExitOnForwardFailure=no', '-L', `${lport}:127.0.0.1:9`, '-R', '0:127.0.0.1:9'],
            ['fwd'],
            { logLevel: 'INFO' },
          ),
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => err.push(d));
        const exited = once(child, 'close');
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        try {
          await waitFor(() => Buffer.concat(out).toString().includes('ready'), 10_000, 'ready');
          // Connect through -L: ssh opens a direct-tcpip channel, which the server rejects.
          const sock = createConnection(lport, '127.0.0.1');
          sock.on('error', () => undefined);
          sock.resume();
          await once(sock, 'close');
          await waitFor(() => /open failed/.test(Buffer.concat(err).toString()), 5000, 'the open failure');
          release();
          const [code] = await exited;
          const stderr = Buffer.concat(err).toString();
          assert.equal(code, 0, stderr);
          assert.equal(Buffer.concat(out).toString(), 'ready\nstill-alive\n');
          assert.match(stderr, /channel \d+: open failed/);
          assert.match(stderr, /remote port forwarding failed/);
          assert.deepEqual(errors, []);
        } finally {
          release();
          clearTimeout(kill);
          if (child.exitCode === null) child.kill('SIGKILL');
        }
      },
    );
  });
});

describe('OpenSSH client: authentication', () => {
  const keygen = (name: string): { priv: string; pub: string } => {
    const priv = join(tmp, name);
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv]);
    assert.equal(r.status, 0, String(r.stderr));
    return { priv, pub: readFileSync(`${priv}.pub`, 'utf8') };
  };

  it('logs in with an ssh-keygen key the publicKeyHandler accepts; denies another key with "Permission denied"', async () => {
    const good = keygen('id_good');
    const bad = keygen('id_bad');
    const authorized = parseAuthorizedKey(good.pub).key;
    await withServer(
      {
        publicKeyHandler: (_ctx, key) => keysEqual(key, authorized),
        handler: (s) => void s.write(`hello ${s.user} ${s.publicKey?.fingerprint()}\n`),
      },
      async ({ port }) => {
        const opts = (key: string): string[] => ['-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey'];
        const ok = await run('ssh', sshArgv(port, opts(good.priv), ['x'], { user: 'alice' }));
        assert.equal(ok.code, 0, ok.stderr.toString());
        assert.equal(ok.stdout.toString(), `hello alice ${authorized.fingerprint()}\n`);
        const denied = await run('ssh', sshArgv(port, opts(bad.priv), ['x'], { user: 'alice' }));
        assert.equal(denied.code, 255);
        assert.match(denied.stderr.toString(), /Permission denied/);
        assert.equal(denied.stdout.toString(), '');
      },
    );
  });

  it('logs in with a password through sshpass; a wrong password is refused', async (t) => {
    // sshpass is optional (password auth is covered with ssh2, plink, dbclient and paramiko).
    if (!has('sshpass')) {
      // CI installs it (.ci/run), so there a missing sshpass is a failure, not a skip.
      assert.ok(!process.env.CI, 'sshpass must be installed in CI');
      t.skip('sshpass is not installed (Debian: sshpass)');
      return;
    }
    await withServer(
      {
        passwordHandler: (ctx, pw) => ctx.user === 'bob' && pw === 's3cret',
        handler: (s) => void s.write(`hello ${s.user}\n`),
      },
      async ({ port }) => {
        const opts = ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password'];
        const argv = (pw: string): string[] => [
          '-p',
          pw,
          'ssh',
          ...sshArgv(port, opts, ['x'], { user: 'bob', batchMode: false }),
        ];
        const ok = await run('sshpass', argv('s3cret'));
        assert.equal(ok.code, 0, ok.stderr.toString());
        assert.equal(ok.stdout.toString(), 'hello bob\n');
        const wrong = await run('sshpass', argv('nope'));
        assert.notEqual(wrong.code, 0);
        assert.equal(wrong.stdout.toString(), '');
      },
    );
  });
});
