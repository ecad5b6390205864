/**
 * Directory listings (SSH_FXP_OPENDIR / SSH_FXP_READDIR): an open directory read in batches,
 * each entry with its `lstat` attributes and an `ls -l` long name.
 *
 * @see draft-ietf-secsh-filexfer-02 §6.7
 * @internal
 * @module
 */
import { constants as fsc } from 'node:fs';
import { longName, statsToAttrs } from './attrs.js';
import { READDIR_BATCH } from './constants.js';
import { errnoError } from './errors.js';
import type { SftpDir, SftpFileHandle, SftpStats } from './fs.js';
import { allow, withPlace, type OpContext } from './ops.js';
import type { NameEntry } from './protocol.js';

/** An open directory. */
export class DirListing {
  private dotsSent = false;
  private done = false;

  private constructor(
    private readonly ctx: OpContext,
    /** An fs path that reaches exactly this directory. */
    readonly path: string,
    private readonly self: SftpStats,
    private readonly dir: SftpDir | undefined,
    private names: string[] | undefined,
    private readonly pin: SftpFileHandle | undefined,
  ) {}

  /** Opens the directory at a client path. */
  static open(ctx: OpContext, path: string): Promise<DirListing> {
    return withPlace(ctx, path, true, async (place) => {
      await allow(ctx, { type: 'opendir', path: place.virtual });
      const fs = ctx.jail.fs;
      let pin: SftpFileHandle | undefined;
      let listPath = place.path;
      if (ctx.jail.pinned) {
        const nofollow = place.name === '' ? 0 : fsc.O_NOFOLLOW;
        pin = await fs.open(place.path, fsc.O_RDONLY | fsc.O_DIRECTORY | nofollow | fsc.O_NONBLOCK);
        listPath = `/proc/self/fd/${(pin as { fd?: number }).fd}`;
      }
      try {
        const self = pin ? await pin.stat() : await fs.lstat(place.path);
        if (!self.isDirectory()) throw errnoError(self.isSymbolicLink() ? 'ELOOP' : 'ENOTDIR', 'Not a directory');
        const dir = fs.opendir ? await fs.opendir(listPath) : undefined;
        const names = dir ? undefined : await fs.readdir(listPath);
        return new DirListing(ctx, listPath, self, dir, names, pin);
      } catch (err) {
        await pin?.close().catch(() => undefined);
        throw err;
      }
    });
  }

  /** The directory's own attributes (FSTAT on its handle). */
  stat(): Promise<SftpStats> {
    return this.ctx.jail.fs.stat(this.path);
  }

  /** The next batch of entries, or `undefined` at the end. */
  async next(): Promise<NameEntry[] | undefined> {
    if (this.done) return undefined;
    const owners = this.ctx.owners;
    const out: NameEntry[] = [];
    if (!this.dotsSent) {
      this.dotsSent = true;
      // '..' of the root must not describe the directory above it: both show this directory.
      for (const n of ['.', '..']) out.push({ filename: n, longname: longName(n, this.self, owners), attrs: statsToAttrs(this.self) });
    }
    const names: string[] = [];
    while (names.length + out.length < READDIR_BATCH) {
      let name: string | undefined;
      if (this.dir) name = (await this.dir.read())?.name;
      else name = this.names!.shift();
      if (name === undefined) {
        this.done = true;
        break;
      }
      names.push(name);
    }
    const stats = await Promise.all(
      names.map((n) => this.ctx.jail.fs.lstat(this.ctx.jail.child(this.path, n)).catch(() => undefined)),
    );
    names.forEach((n, i) => {
      const st = stats[i];
      // An entry removed since it was listed is left out.
      if (st) out.push({ filename: n, longname: longName(n, st, owners), attrs: statsToAttrs(st) });
    });
    if (out.length === 0) return this.done ? undefined : this.next();
    return out;
  }

  /** Closes the directory. */
  async close(): Promise<void> {
    this.done = true;
    this.names = undefined;
    await this.dir?.close().catch(() => undefined);
    await this.pin?.close().catch(() => undefined);
  }
}
