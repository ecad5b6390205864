/**
 * {@link sftpHandler}: an SFTP server for a directory, as a subsystem handler.
 *
 * @module
 */
import type { SubsystemHandler } from '../hooks.js';
import { resolveFileServerOptions, resolveSftpOptions, type FileServerOptions, type ResolvedFileServerOptions, type SftpOptions } from './options.js';

/** The session-serving part (engine, confinement, SCP), loaded on the first session. @internal */
export function loadServe(): Promise<typeof import('./serve.js')> {
  return (serveModule ??= import('./serve.js'));
}
let serveModule: Promise<typeof import('./serve.js')> | undefined;

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
  return async (session) => (await loadServe()).serveSftp(session, opts);
}

/** Checks {@link FileServerOptions} for SCP (no SFTP-only keys). @internal */
export function resolveScpOptions(options: FileServerOptions): ResolvedFileServerOptions {
  return resolveFileServerOptions(options, new Set(['root', 'readOnly', 'umask', 'operationCallback', 'fs']));
}
