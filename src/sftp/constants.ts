/**
 * SFTP version 3 numbers: packet types, status codes, open flags and attribute flags, and the
 * limits glidessh's server works within.
 *
 * @see draft-ietf-secsh-filexfer-02 §3, §5, §6.3, §7
 * @module
 */

/** Packet types (draft-ietf-secsh-filexfer-02 §3). @internal */
export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/**
 * SFTP status codes, sent in `SSH_FXP_STATUS` replies; throw a {@link SftpStatusError} with
 * one of them from a filesystem or a callback to choose the client's answer.
 *
 * @example
 * ```ts
 * throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'quota exceeded');
 * ```
 * @see draft-ietf-secsh-filexfer-02 §7
 */
export const SftpStatus = {
  /** Success. */
  OK: 0,
  /** End of file, or no more directory entries. */
  EOF: 1,
  /** The file or a directory on its path does not exist. */
  NO_SUCH_FILE: 2,
  /** Not allowed (permissions, read-only server, a callback said no, a path outside the root). */
  PERMISSION_DENIED: 3,
  /** Any other error; the message says which. */
  FAILURE: 4,
  /** A malformed request. */
  BAD_MESSAGE: 5,
  /** Not connected (client-side only). */
  NO_CONNECTION: 6,
  /** Connection lost (client-side only). */
  CONNECTION_LOST: 7,
  /** The server does not implement the request. */
  OP_UNSUPPORTED: 8,
} as const;

/**
 * One of the {@link SftpStatus} values.
 *
 * @example
 * ```ts
 * const code: SftpStatusCode = SftpStatus.NO_SUCH_FILE;
 * ```
 * @see draft-ietf-secsh-filexfer-02 §7
 */
export type SftpStatusCode = (typeof SftpStatus)[keyof typeof SftpStatus];

/** `pflags` of SSH_FXP_OPEN (draft-ietf-secsh-filexfer-02 §6.3). @internal */
export const PFLAG = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

/** Attribute flags (draft-ietf-secsh-filexfer-02 §5). @internal */
export const ATTR = {
  SIZE: 0x01,
  UIDGID: 0x02,
  PERMISSIONS: 0x04,
  ACMODTIME: 0x08,
  EXTENDED: 0x80000000,
} as const;

/** Largest request or reply packet, as OpenSSH's sftp-server (256 KiB). @internal */
export const MAX_PACKET = 256 * 1024;
/** Largest READ answered in full and WRITE accepted (OpenSSH's SFTP_MAX_READ_LENGTH). @internal */
export const MAX_READ = MAX_PACKET - 1024;
/** Handles one session may hold open at once. @internal */
export const MAX_HANDLES = 512;
/** Requests in progress at once per session before reading from the client pauses. @internal */
export const MAX_IN_FLIGHT = 128;
/** Bytes of READ and WRITE data in progress at once per session before reading pauses. @internal */
export const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** Bytes of replies queued for the channel before reading from the client pauses. @internal */
export const MAX_QUEUED_OUTPUT = 2 * 1024 * 1024;
/** Directory entries per SSH_FXP_NAME reply to READDIR (as OpenSSH). @internal */
export const READDIR_BATCH = 100;
/** Symbolic links followed while resolving one path (Linux's MAXSYMLINKS). @internal */
export const MAX_SYMLINKS = 40;
