/**
 * {@link SftpStatusError}, and how any error becomes an SFTP status code and message.
 *
 * @module
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { GlidesshError } from '../errors.js';
import { SftpStatus, type SftpStatusCode } from './constants.js';

/**
 * An error that carries the SFTP status the client gets. Throw it from a custom
 * {@link SftpFileSystem} or an {@link SftpOperationCallback} to choose the answer; glidessh
 * throws it for requests it refuses (a read-only server, a symlink target outside the root).
 * Code `ERR_SFTP_STATUS`.
 *
 * @example
 * ```ts
 * import { SftpStatus, SftpStatusError } from 'glidessh';
 * throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'uploads are closed today');
 * ```
 * @see draft-ietf-secsh-filexfer-02 §7
 */
export class SftpStatusError extends GlidesshError {
  /** The status sent to the client. */
  readonly status: SftpStatusCode;
  constructor(status: SftpStatusCode, message: string, options?: { cause?: unknown }) {
    super('ERR_SFTP_STATUS', message, options);
    this.status = status;
  }
}

/** What a status means when there is nothing more specific to say. */
const DEFAULT_MESSAGE: Record<number, string> = {
  [SftpStatus.OK]: 'Success',
  [SftpStatus.EOF]: 'End of file',
  [SftpStatus.NO_SUCH_FILE]: 'No such file',
  [SftpStatus.PERMISSION_DENIED]: 'Permission denied',
  [SftpStatus.FAILURE]: 'Failure',
  [SftpStatus.BAD_MESSAGE]: 'Bad message',
  [SftpStatus.OP_UNSUPPORTED]: 'Operation unsupported',
};

/** The text for a status code. @internal */
export function statusMessage(status: number): string {
  return DEFAULT_MESSAGE[status] ?? 'Failure';
}

/** errno names (Node's `err.code`) and the status each maps to, as OpenSSH's sftp-server does. */
const ERRNO_STATUS: Record<string, SftpStatusCode> = {
  ENOENT: SftpStatus.NO_SUCH_FILE,
  ENOTDIR: SftpStatus.NO_SUCH_FILE,
  EBADF: SftpStatus.NO_SUCH_FILE,
  EACCES: SftpStatus.PERMISSION_DENIED,
  EPERM: SftpStatus.PERMISSION_DENIED,
  EROFS: SftpStatus.PERMISSION_DENIED,
  ENAMETOOLONG: SftpStatus.BAD_MESSAGE,
  EINVAL: SftpStatus.BAD_MESSAGE,
  ENOSYS: SftpStatus.OP_UNSUPPORTED,
  ENOTSUP: SftpStatus.OP_UNSUPPORTED,
  EOPNOTSUPP: SftpStatus.OP_UNSUPPORTED,
};

/** The errno's own text ("file already exists"), capitalised; never a path. */
function errnoText(err: { errno?: unknown; code?: unknown }): string | undefined {
  if (typeof err.errno === 'number') {
    const entry = getSystemErrorMap().get(err.errno);
    if (entry) return entry[1].charAt(0).toUpperCase() + entry[1].slice(1);
  }
  return undefined;
}

/**
 * The status and message a client gets for `err`. An {@link SftpStatusError} keeps its own; a
 * Node fs error maps by its errno (ENOENT → NO_SUCH_FILE, EACCES/EPERM → PERMISSION_DENIED,
 * else FAILURE) with the errno's text, never the message (which names server paths).
 *
 * @internal
 */
export function toStatus(err: unknown): { status: SftpStatusCode; message: string } {
  if (err instanceof SftpStatusError) return { status: err.status, message: err.message || statusMessage(err.status) };
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; errno?: unknown };
    const status = typeof e.code === 'string' ? ERRNO_STATUS[e.code] : undefined;
    if (status !== undefined || typeof e.code === 'string') {
      return { status: status ?? SftpStatus.FAILURE, message: errnoText(e) ?? statusMessage(status ?? SftpStatus.FAILURE) };
    }
  }
  return { status: SftpStatus.FAILURE, message: 'Failure' };
}

/** An error with a Node-style errno code (for our own checks that mimic the system's). @internal */
export function errnoError(code: 'ENOENT' | 'ENOTDIR' | 'ELOOP' | 'EEXIST' | 'EISDIR' | 'EINVAL', text: string): Error {
  return Object.assign(new Error(text), { code, errno: -(osConstants.errno[code] ?? 0) });
}
