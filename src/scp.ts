/**
 * Legacy SCP (`scp -O`): the rcp protocol over an exec request, `scp -t` to receive files
 * and `scp -f` to send them, recursive or not, with `-p` times and modes. It shares the SFTP
 * server's root, confinement, `readOnly`, `umask`, operation callback and filesystem. Modern
 * `scp` (OpenSSH ≥ 9.0 by default) uses SFTP and needs {@link sftpHandler} instead.
 *
 * @module
 */
import type { Handler, Middleware } from './hooks.js';
import { loadServe, resolveScpOptions } from './sftp/handler.js';
import type { FileServerOptions } from './sftp/options.js';

/**
 * Options of {@link scpHandler}: the same as the SFTP server's, so one object serves both.
 *
 * @example
 * ```ts
 * const files: ScpOptions = { root: '/srv/files', readOnly: true };
 * new Server({ handler: scpHandler(files), subsystemHandlers: { sftp: sftpHandler(files) } });
 * ```
 * @see RFC 4254 §6.5
 */
export type ScpOptions = FileServerOptions;

/** A parsed `scp -t` / `scp -f` command. @internal */
export interface ScpCommand {
  mode: 'sink' | 'source';
  recursive: boolean;
  preserve: boolean;
  targetIsDir: boolean;
  paths: string[];
}

/** Parses `session.command` as the remote side of legacy scp; undefined when it is not one. @internal */
export function parseScpCommand(argv: readonly string[]): ScpCommand | undefined {
  if (argv[0] !== 'scp') return undefined;
  const cmd: ScpCommand = { mode: 'sink', recursive: false, preserve: false, targetIsDir: false, paths: [] };
  let mode: ScpCommand['mode'] | undefined;
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    for (const ch of a.slice(1)) {
      if (ch === 't' || ch === 'f') mode = ch === 't' ? 'sink' : 'source';
      else if (ch === 'r') cmd.recursive = true;
      else if (ch === 'p') cmd.preserve = true;
      else if (ch === 'd') cmd.targetIsDir = true;
      else if (ch !== 'v' && ch !== 'q') return undefined;
    }
  }
  cmd.paths = argv.slice(i).map((p) => (p === '' ? '.' : p));
  if (!mode) return undefined;
  cmd.mode = mode;
  if (mode === 'sink' && cmd.paths.length !== 1) return undefined;
  if (cmd.paths.length === 0) return undefined;
  return cmd;
}

/**
 * Serves legacy SCP (`scp -O`, and PuTTY `pscp -scp`): exec requests `scp -t …` (upload)
 * and `scp -f …` (download), single files or `-r` trees, `-p` times and modes, `-d`, and
 * `*`/`?`/`[…]` in the last component of a download path. Paths are confined to `root`
 * exactly as by {@link sftpHandler}. Any other command goes to `fallback`; without one it is
 * refused with a message on stderr and exit status 1. The exit status is 0 when every file
 * went through, 1 otherwise.
 *
 * @throws InvalidOptionError for a bad option.
 * @example
 * ```ts
 * import { Server, scpHandler, sftpHandler } from 'glidessh';
 *
 * const files = { root: '/srv/files' };
 * new Server({ handler: scpHandler(files), subsystemHandlers: { sftp: sftpHandler(files) } });
 * ```
 * @see RFC 4254 §6.5 (exec)
 */
export function scpHandler(options: ScpOptions, fallback?: Handler): Handler {
  const opts = resolveScpOptions(options);
  return async (session) => {
    const cmd = parseScpCommand(session.command);
    if (!cmd) {
      if (fallback) return fallback(session);
      session.stderr.write('This service only serves scp and sftp.\n');
      await session.exit(1);
      return;
    }
    await (await loadServe()).serveScp(session, opts, cmd);
  };
}

/**
 * {@link scpHandler} as middleware: serves `scp -t`/`scp -f` and passes every other session
 * to the next handler.
 *
 * @example
 * ```ts
 * server.use(scpMiddleware({ root: '/srv/files', readOnly: true }));
 * ```
 * @see RFC 4254 §6.5
 */
export function scpMiddleware(options: ScpOptions): Middleware {
  const opts: ScpOptions = { ...options };
  resolveScpOptions(opts);
  return (next) => scpHandler(opts, next);
}
