/**
 * {@link sftpHandler}: an SFTP server for a directory, as a subsystem handler.
 *
 * @module
 */
import { HookError } from '../errors.js';
import type { SubsystemHandler } from '../hooks.js';
import type { Session } from '../session.js';
import { localOwnerNames, NUMERIC_OWNERS } from './attrs.js';
import { SftpEngine } from './engine.js';
import { Jail, PINNED_AVAILABLE } from './jail.js';
import { report, type OpContext } from './ops.js';
import { resolveFileServerOptions, resolveSftpOptions, type FileServerOptions, type ResolvedFileServerOptions, type SftpOptions } from './options.js';

/**
 * Opens the session's root and builds what operations need; on failure reports the error,
 * exits the session with status 1 and returns undefined.
 * @internal
 */
export async function openContext(session: Session, opts: ResolvedFileServerOptions): Promise<OpContext | undefined> {
  let root: string;
  try {
    root = await opts.root(session);
    if (typeof root !== 'string' || root === '') throw new TypeError('root must return a non-empty path');
  } catch (err) {
    report(session, new HookError('root', err));
    await session.exit(1).catch(() => undefined);
    return undefined;
  }
  let jail: Jail;
  try {
    jail = await Jail.open(opts.fs, root, opts.local && PINNED_AVAILABLE);
  } catch (err) {
    report(session, err);
    await session.exit(1).catch(() => undefined);
    return undefined;
  }
  const owners = opts.local ? await localOwnerNames() : NUMERIC_OWNERS;
  return { session, jail, options: opts, owners };
}

/**
 * An SFTP (version 3) server for a directory, to register as the `sftp` subsystem: OpenSSH
 * `sftp`, modern `scp`, PuTTY `psftp`/`pscp`, WinSCP, FileZilla and ssh2's client use it.
 *
 * Every request is served: open/read/write/close, stat/lstat/fstat, setstat/fsetstat,
 * opendir/readdir (with `ls -l` long names), remove, mkdir, rmdir, realpath, rename,
 * readlink, symlink, and the OpenSSH extensions `posix-rename`, `statvfs`, `hardlink`,
 * `fsync` and `limits` (255 KiB reads and writes). Clients may pipeline requests (OpenSSH
 * keeps 64 in flight); memory stays bounded. The client's EOF (`bye`) ends the session with
 * exit status 0 and every open file is closed.
 *
 * Confinement: clients see `root` as `/`; `..` stops at it and symbolic links are followed
 * inside it, as under a chroot. See the README, "SFTP and SCP", for exactly what is
 * guaranteed.
 *
 * @throws InvalidOptionError for a bad option (no `root`, an unknown key, …).
 * @example
 * ```ts
 * import { Server, sftpHandler } from 'glidessh';
 *
 * const server = new Server({
 *   passwordHandler: (ctx, pw) => pw === 'secret',
 *   subsystemHandlers: { sftp: sftpHandler({ root: '/srv/files', umask: 0o022 }) },
 * });
 * await server.listen(2222);
 * ```
 * @see draft-ietf-secsh-filexfer-02
 * @see RFC 4254 §6.5 (subsystems)
 */
export function sftpHandler(options: SftpOptions): SubsystemHandler {
  const opts = resolveSftpOptions(options);
  return async (session) => {
    const ctx = await openContext(session, opts);
    if (!ctx) return;
    try {
      const code = await new SftpEngine(ctx, opts.maxReadLength).run();
      if (code !== 0 && !session.signal.aborted) await session.exit(code).catch(() => undefined);
    } finally {
      await ctx.jail.close();
    }
  };
}

/** Checks {@link FileServerOptions} for SCP (no SFTP-only keys). @internal */
export function resolveScpOptions(options: FileServerOptions): ResolvedFileServerOptions {
  return resolveFileServerOptions(options, new Set(['root', 'readOnly', 'umask', 'operationCallback', 'fs']));
}
