/**
 * The part of the SFTP and SCP servers that runs sessions, loaded on the first session (the
 * factories in handler.ts and scp.ts stay small, so that a server that never serves files does
 * not carry the engine in its heap).
 *
 * @internal
 * @module
 */
import { HookError } from '../errors.js';
import type { ScpCommand } from '../scp.js';
import type { Session } from '../session.js';
import { localOwnerNames, NUMERIC_OWNERS } from './attrs.js';
import { ByteReader } from './byte-reader.js';
import { SftpEngine } from './engine.js';
import { Jail, PINNED_AVAILABLE } from './jail.js';
import { report, type OpContext } from './ops.js';
import type { ResolvedFileServerOptions } from './options.js';
import { Remote, Scp } from './scp-protocol.js';

/**
 * Opens the session's root and builds what operations need; on failure reports the error,
 * exits the session with status 1 and returns undefined.
 */
async function openContext(session: Session, opts: ResolvedFileServerOptions): Promise<OpContext | undefined> {
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

/** Serves one SFTP session (see `sftpHandler`). */
export async function serveSftp(session: Session, opts: ResolvedFileServerOptions & { maxReadLength: number }): Promise<void> {
  const ctx = await openContext(session, opts);
  if (!ctx) return;
  try {
    const code = await new SftpEngine(ctx, opts.maxReadLength).run();
    if (code !== 0 && !session.signal.aborted) await session.exit(code).catch(() => undefined);
  } finally {
    await ctx.jail.close();
  }
}

/** Serves one legacy SCP session (see `scpHandler`); the exit status is 1 if any file failed. */
export async function serveScp(session: Session, opts: ResolvedFileServerOptions, cmd: ScpCommand): Promise<void> {
  const ctx = await openContext(session, opts);
  if (!ctx) return;
  const input = new ByteReader(session);
  const scp = new Scp(ctx, input, cmd);
  try {
    if (cmd.mode === 'sink') await scp.sink();
    else await scp.source();
  } catch (err) {
    if (!(err instanceof Remote)) throw err;
    scp.errors++;
  } finally {
    input.close();
    await ctx.jail.close();
  }
  if (!session.signal.aborted) await session.exit(scp.errors > 0 ? 1 : 0).catch(() => undefined);
}
