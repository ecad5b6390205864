/**
 * Options shared by {@link sftpHandler} and {@link scpHandler}, the operations their
 * {@link SftpOperationCallback} decides, and their validation.
 *
 * @module
 */
import fsPromises from 'node:fs/promises';
import { InvalidOptionError } from '../errors.js';
import type { Session } from '../session.js';
import type { MaybePromise } from '../types.js';
import type { SftpFileSystem } from './fs.js';

/**
 * One operation a client asks for, as the {@link SftpOperationCallback} sees it. Paths are
 * the client's view (`/` is the root), canonical: `..` and symbolic links already resolved
 * inside the root (except the last component of `lstat`, `remove`, `rename`, `readlink`,
 * `symlink`, `link`, which names the entry itself). Reads and writes through an open handle
 * are decided once, by `open`.
 *
 * @example
 * ```ts
 * const op: SftpOperation = { type: 'open', path: '/a.txt', read: true, write: false, create: false, truncate: false };
 * ```
 * @see draft-ietf-secsh-filexfer-02 §6
 */
export type SftpOperation =
  | {
      /** Opening a file. */
      type: 'open';
      /** The file. */
      path: string;
      /** For reading. */
      read: boolean;
      /** For writing (or appending). */
      write: boolean;
      /** Creating it if absent. */
      create: boolean;
      /** Emptying it. */
      truncate: boolean;
    }
  | {
      /** An operation on one path. */
      type: 'stat' | 'lstat' | 'setstat' | 'opendir' | 'remove' | 'mkdir' | 'rmdir' | 'readlink' | 'realpath' | 'statvfs';
      /** The path. */
      path: string;
    }
  | {
      /** Renaming, or making a hard link (`hardlink@openssh.com`). */
      type: 'rename' | 'link';
      /** The existing entry. */
      path: string;
      /** The new name. */
      newPath: string;
    }
  | {
      /** Creating a symbolic link. */
      type: 'symlink';
      /** The new link. */
      path: string;
      /** Its target, as the client sent it. */
      target: string;
    };

/**
 * Decides whether a client may perform an operation; `false` answers PERMISSION_DENIED. A
 * throw also denies and is reported on the server's `'error'` event as a `HookError`.
 *
 * @example
 * ```ts
 * const noDotfiles: SftpOperationCallback = (session, op) => !op.path.split('/').some((c) => c.startsWith('.'));
 * ```
 * @see draft-ietf-secsh-filexfer-02 §7 (PERMISSION_DENIED)
 */
export type SftpOperationCallback = (session: Session, operation: SftpOperation) => MaybePromise<boolean>;

/**
 * Where and how a file server ({@link sftpHandler}, {@link scpHandler}) serves files.
 *
 * @example
 * ```ts
 * const options: FileServerOptions = { root: (s) => `/srv/sftp/${s.user}`, umask: 0o022 };
 * ```
 * @see draft-ietf-secsh-filexfer-02 §6
 */
export interface FileServerOptions {
  /**
   * The directory clients see as `/`; a function computes it per session (a root per user).
   * Every client path, `..` and symbolic link is resolved inside it (see the README, "SFTP
   * and SCP"). Required.
   */
  root: string | ((session: Session) => MaybePromise<string>);
  /**
   * Refuse every change (write, create, remove, rename, mkdir, setstat, links) with
   * PERMISSION_DENIED.
   * @defaultValue `false`
   */
  readOnly?: boolean;
  /**
   * Permission bits removed from the mode of files and directories clients create; the new
   * entry then gets exactly `mode & ~umask` (also when the process umask is stricter). Unset:
   * the process umask applies, as for OpenSSH's sftp-server.
   */
  umask?: number;
  /** Allows or denies each operation. Unset: everything the filesystem permits. */
  operationCallback?: SftpOperationCallback;
  /**
   * The filesystem served.
   * @defaultValue `node:fs/promises`
   */
  fs?: SftpFileSystem;
}

/**
 * Options of {@link sftpHandler}: the {@link FileServerOptions} and SFTP's own.
 *
 * @example
 * ```ts
 * sftpHandler({ root: '/srv/files', readOnly: true, maxReadLength: 64 * 1024 });
 * ```
 * @see draft-ietf-secsh-filexfer-02
 */
export interface SftpOptions extends FileServerOptions {
  /**
   * Largest READ answered in full (bytes), advertised with `limits@openssh.com` so clients
   * ask for this much at a time; from 1 KiB to 255 KiB.
   * @defaultValue `261120` (as OpenSSH's sftp-server)
   */
  maxReadLength?: number;
}

/** Options after validation. @internal */
export interface ResolvedFileServerOptions {
  root: (session: Session) => MaybePromise<string>;
  readOnly: boolean;
  umask: number | undefined;
  operationCallback: SftpOperationCallback | undefined;
  fs: SftpFileSystem;
  /** Whether `fs` is the local filesystem (pinned resolution, owner names). */
  local: boolean;
}

const KNOWN = new Set(['root', 'readOnly', 'umask', 'operationCallback', 'fs', 'maxReadLength']);

/** Checks file server options; a bad one throws {@link InvalidOptionError}. @internal */
export function resolveFileServerOptions(options: FileServerOptions, allowed: ReadonlySet<string> = KNOWN): ResolvedFileServerOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('root', 'options with a root are required');
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) throw new InvalidOptionError(key, 'unknown option');
  }
  const { root, readOnly = false, umask, operationCallback, fs } = options;
  if (typeof root === 'string') {
    if (root === '') throw new InvalidOptionError('root', 'must be a non-empty path');
  } else if (typeof root !== 'function') {
    throw new InvalidOptionError('root', 'must be a directory path or a function of the session');
  }
  if (typeof readOnly !== 'boolean') throw new InvalidOptionError('readOnly', 'must be a boolean');
  if (umask !== undefined && (!Number.isInteger(umask) || umask < 0 || umask > 0o777)) {
    throw new InvalidOptionError('umask', 'must be an integer from 0 to 0o777');
  }
  if (operationCallback !== undefined && typeof operationCallback !== 'function') {
    throw new InvalidOptionError('operationCallback', 'must be a function');
  }
  const methods = ['open', 'stat', 'lstat', 'readdir', 'mkdir', 'rmdir', 'unlink', 'rename', 'readlink', 'symlink', 'realpath'];
  if (fs !== undefined) {
    const missing = methods.filter((m) => typeof (fs as unknown as Record<string, unknown>)[m] !== 'function');
    if (missing.length > 0) throw new InvalidOptionError('fs', `is missing ${missing.join(', ')}`);
  }
  return {
    root: typeof root === 'string' ? () => root : root,
    readOnly,
    umask,
    operationCallback,
    fs: fs ?? fsPromises,
    local: fs === undefined || fs === fsPromises,
  };
}

/** Checks {@link SftpOptions}. @internal */
export function resolveSftpOptions(options: SftpOptions): ResolvedFileServerOptions & { maxReadLength: number } {
  const base = resolveFileServerOptions(options);
  const max = options.maxReadLength ?? 261120;
  if (!Number.isInteger(max) || max < 1024 || max > 261120) {
    throw new InvalidOptionError('maxReadLength', 'must be an integer from 1024 to 261120');
  }
  return { ...base, maxReadLength: max };
}
