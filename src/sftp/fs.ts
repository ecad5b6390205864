/**
 * The filesystem an SFTP or SCP server serves: {@link SftpFileSystem}, a subset of
 * `node:fs/promises` (which is the default), so that `memfs`-style volumes or a virtual tree
 * written for the purpose can be served instead of the local disk.
 *
 * @module
 */

/**
 * What the server reads from a `stat` result (a Node `Stats` has all of it).
 *
 * @example
 * ```ts
 * const st: SftpStats = await fs.promises.stat('/srv/files/a.txt');
 * ```
 * @see draft-ietf-secsh-filexfer-02 §5
 */
export interface SftpStats {
  /** `st_mode`: file type and permission bits. */
  mode: number;
  /** Size in bytes. */
  size: number | bigint;
  /** Owner user id. */
  uid: number;
  /** Owner group id. */
  gid: number;
  /** Hard link count (shown in long names); 1 when unknown. */
  nlink?: number;
  /** Last access, ms since the epoch. */
  atimeMs: number;
  /** Last modification, ms since the epoch. */
  mtimeMs: number;
  /** Whether it is a directory. */
  isDirectory(): boolean;
  /** Whether it is a regular file. */
  isFile(): boolean;
  /** Whether it is a symbolic link (only `lstat` can say yes). */
  isSymbolicLink(): boolean;
}

/**
 * Filesystem statistics for `statvfs@openssh.com` (Node's `StatFs`).
 *
 * @example
 * ```ts
 * const s: SftpStatFs = await fs.promises.statfs('/srv/files');
 * ```
 * @see https://github.com/openssh/openssh-portable/blob/master/PROTOCOL (statvfs@openssh.com)
 */
export interface SftpStatFs {
  /** Block size. */
  bsize: number | bigint;
  /** Total blocks. */
  blocks: number | bigint;
  /** Free blocks. */
  bfree: number | bigint;
  /** Free blocks for unprivileged users. */
  bavail: number | bigint;
  /** Total inodes. */
  files: number | bigint;
  /** Free inodes. */
  ffree: number | bigint;
}

/**
 * An open file (Node's `FileHandle` fits).
 *
 * @example
 * ```ts
 * const fh: SftpFileHandle = await fs.promises.open('/srv/files/a.txt', 'r');
 * ```
 * @see draft-ietf-secsh-filexfer-02 §6.3, §6.4
 */
export interface SftpFileHandle {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`. */
  read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{
    /** Bytes read; 0 at the end of the file. */
    bytesRead: number;
  }>;
  /** Writes `length` bytes of `buffer` from `offset` at `position`. */
  write(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{
    /** Bytes written. */
    bytesWritten: number;
  }>;
  /** Attributes of the open file. */
  stat(): Promise<SftpStats>;
  /** Changes permission bits. */
  chmod(mode: number): Promise<void>;
  /** Changes the owner. */
  chown(uid: number, gid: number): Promise<void>;
  /** Sets access and modification times (seconds since the epoch). */
  utimes(atime: number, mtime: number): Promise<void>;
  /** Sets the size. */
  truncate(len: number): Promise<void>;
  /** Flushes to stable storage (`fsync@openssh.com`). */
  sync(): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

/**
 * An open directory being listed (Node's `Dir` fits).
 *
 * @example
 * ```ts
 * const dir: SftpDir = await fs.promises.opendir('/srv/files');
 * ```
 * @see draft-ietf-secsh-filexfer-02 §6.7
 */
export interface SftpDir {
  /** The next entry, or `null` at the end. */
  read(): Promise<{
    /** The entry's name. */
    name: string;
  } | null>;
  /** Closes the directory. */
  close(): Promise<void>;
}

/**
 * The operations an SFTP/SCP server needs, with the signatures of `node:fs/promises`, which
 * is the default implementation. Paths are POSIX absolute paths *of this filesystem*; the
 * server confines clients to the configured root before calling any of these. Errors are
 * reported by their `code` (`ENOENT`, `EACCES`, `EEXIST`, …) as Node's are, or as an
 * {@link SftpStatusError} to choose the client's status directly.
 *
 * @example
 * ```ts
 * import { Volume } from 'memfs';
 * const vol = Volume.fromJSON({ '/readme.txt': 'hello' });
 * sftpHandler({ root: '/', fs: vol.promises as unknown as SftpFileSystem });
 * ```
 * @see draft-ietf-secsh-filexfer-02 §6
 */
export interface SftpFileSystem {
  /** Opens a file; `flags` are `fs.constants.O_*` bits. */
  open(path: string, flags: number, mode?: number): Promise<SftpFileHandle>;
  /** Attributes, following symbolic links. */
  stat(path: string): Promise<SftpStats>;
  /** Attributes of the entry itself. */
  lstat(path: string): Promise<SftpStats>;
  /** Entry names of a directory (without `.` and `..`). */
  readdir(path: string): Promise<string[]>;
  /** Opens a directory for listing in batches; {@link SftpFileSystem.readdir} is used when absent. */
  opendir?(path: string): Promise<SftpDir>;
  /** Creates a directory. */
  mkdir(path: string, mode?: number): Promise<unknown>;
  /** Removes an empty directory. */
  rmdir(path: string): Promise<void>;
  /** Removes a file or symbolic link. */
  unlink(path: string): Promise<void>;
  /** Renames, replacing an existing `newPath` (POSIX `rename(2)`). */
  rename(oldPath: string, newPath: string): Promise<void>;
  /** The target of a symbolic link. */
  readlink(path: string): Promise<string>;
  /** Creates a symbolic link at `path` pointing to `target`. */
  symlink(target: string, path: string): Promise<void>;
  /** Creates a hard link (`hardlink@openssh.com`, and plain RENAME of files). */
  link(existingPath: string, newPath: string): Promise<void>;
  /** Changes permission bits. */
  chmod(path: string, mode: number): Promise<void>;
  /** Changes the owner. */
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** Sets access and modification times (seconds since the epoch). */
  utimes(path: string, atime: number, mtime: number): Promise<void>;
  /** Sets a file's size. */
  truncate(path: string, len: number): Promise<void>;
  /** The canonical path (used once, for the root). */
  realpath(path: string): Promise<string>;
  /** Filesystem statistics; `statvfs@openssh.com` is not offered when absent. */
  statfs?(path: string): Promise<SftpStatFs>;
}
