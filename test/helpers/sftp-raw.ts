/**
 * A raw SFTP v3 client for protocol-level tests: it sends exactly the packets a test builds
 * (pipelined or malformed ones included) over an ssh2 client's `sftp` subsystem channel and
 * parses each reply, keeping the order in which replies arrived.
 */
import { once } from 'node:events';
import type ssh2 from 'ssh2';
import { connect, collect, type ExecResult } from './harness.js';

export const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18,
  READLINK: 19, SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;
export const ST = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8 } as const;
export const PF = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 0x10, EXCL: 0x20 } as const;

export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
}

export interface Reply {
  type: number;
  id: number;
  status?: number;
  message?: string;
  handle?: Buffer;
  data?: Buffer;
  names?: Array<{ filename: string; longname: string; attrs: Attrs }>;
  attrs?: Attrs;
}

/** Encodes fields: numbers are uint32, bigints uint64, strings/Buffers SSH strings, {attrs}. */
export function fields(...parts: Array<number | bigint | string | Buffer | { attrs: Attrs } | { raw: Buffer }>): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(p >>> 0);
      out.push(b);
    } else if (typeof p === 'bigint') {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(p);
      out.push(b);
    } else if (typeof p === 'string' || Buffer.isBuffer(p)) {
      const s = typeof p === 'string' ? Buffer.from(p) : p;
      out.push(fields(s.length), s);
    } else if ('raw' in p) {
      out.push(p.raw);
    } else {
      out.push(encodeAttrs(p.attrs));
    }
  }
  return Buffer.concat(out);
}

export function encodeAttrs(a: Attrs): Buffer {
  let flags = 0;
  const rest: Buffer[] = [];
  if (a.size !== undefined) (flags |= 1), rest.push(fields(BigInt(a.size)));
  if (a.uid !== undefined) (flags |= 2), rest.push(fields(a.uid, a.gid ?? 0));
  if (a.permissions !== undefined) (flags |= 4), rest.push(fields(a.permissions));
  if (a.mtime !== undefined) (flags |= 8), rest.push(fields(a.atime ?? a.mtime, a.mtime));
  return Buffer.concat([fields(flags), ...rest]);
}

function decodeAttrs(b: Buffer, pos: number): [Attrs, number] {
  const flags = b.readUInt32BE(pos);
  pos += 4;
  const a: Attrs = {};
  if (flags & 1) (a.size = Number(b.readBigUInt64BE(pos))), (pos += 8);
  if (flags & 2) (a.uid = b.readUInt32BE(pos)), (a.gid = b.readUInt32BE(pos + 4)), (pos += 8);
  if (flags & 4) (a.permissions = b.readUInt32BE(pos)), (pos += 4);
  if (flags & 8) (a.atime = b.readUInt32BE(pos)), (a.mtime = b.readUInt32BE(pos + 4)), (pos += 8);
  return [a, pos];
}

function str(b: Buffer, pos: number): [Buffer, number] {
  const len = b.readUInt32BE(pos);
  return [b.subarray(pos + 4, pos + 4 + len), pos + 4 + len];
}

function parse(p: Buffer): Reply {
  const type = p[0]!;
  const id = p.readUInt32BE(1);
  const r: Reply = { type, id };
  let pos = 5;
  if (type === T.STATUS) {
    r.status = p.readUInt32BE(5);
    r.message = str(p, 9)[0].toString();
  } else if (type === T.HANDLE) r.handle = str(p, 5)[0];
  else if (type === T.DATA) r.data = Buffer.from(str(p, 5)[0]);
  else if (type === T.EXTENDED_REPLY) r.data = Buffer.from(p.subarray(5));
  else if (type === T.ATTRS) r.attrs = decodeAttrs(p, 5)[0];
  else if (type === T.NAME) {
    const n = p.readUInt32BE(5);
    pos = 9;
    r.names = [];
    for (let i = 0; i < n; i++) {
      const [f, p1] = str(p, pos);
      const [l, p2] = str(p, p1);
      const [attrs, p3] = decodeAttrs(p, p2);
      pos = p3;
      r.names.push({ filename: f.toString(), longname: l.toString(), attrs });
    }
  }
  return r;
}

export class RawSftp {
  /** Every reply in arrival order. */
  readonly received: Reply[] = [];
  extensions = new Map<string, string>();
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private versionWaiter: ((b: Buffer) => void) | undefined;
  readonly done: Promise<ExecResult>;

  private constructor(
    readonly client: ssh2.Client,
    readonly channel: ssh2.ClientChannel,
  ) {
    this.done = collect(channel);
    channel.on('data', (d: Buffer) => this.onData(d));
  }

  /** Connects, starts the `sftp` subsystem and (unless `init` is false) exchanges INIT/VERSION. */
  static async open(port: number, opts: { user?: string; init?: boolean } = {}): Promise<RawSftp> {
    const client = await connect(port, { username: opts.user ?? 'testuser' });
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    const s = new RawSftp(client, channel);
    if (opts.init !== false) await s.init();
    return s;
  }

  async init(): Promise<void> {
    const v = new Promise<Buffer>((r) => (this.versionWaiter = r));
    this.sendPacket(T.INIT, fields(3));
    const p = await v;
    let pos = 5;
    while (pos < p.length) {
      const [n, p1] = str(p, pos);
      const [d, p2] = str(p, p1);
      this.extensions.set(n.toString(), d.toString());
      pos = p2;
    }
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
      const len = this.buf.readUInt32BE(0);
      const p = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      if (p[0] === T.VERSION) {
        this.versionWaiter?.(Buffer.from(p));
        continue;
      }
      const r = parse(p);
      this.received.push(r);
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    }
  }

  /** Writes one packet (type + body, body starting with the id when the type has one). */
  sendPacket(type: number, body: Buffer): boolean {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length + 1);
    head[4] = type;
    return this.channel.write(Buffer.concat([head, body]));
  }

  /** Sends a request and returns its reply (the id is prepended to `body`). */
  request(type: number, body: Buffer = Buffer.alloc(0)): Promise<Reply> {
    const id = this.nextId++;
    const p = new Promise<Reply>((r) => this.waiting.set(id, r));
    this.sendPacket(type, Buffer.concat([fields(id), body]));
    return p;
  }

  async open(path: string, pflags: number, attrs: Attrs = {}): Promise<Buffer> {
    const r = await this.request(T.OPEN, fields(path, pflags, { attrs }));
    if (!r.handle) throw Object.assign(new Error(`open ${path}: ${r.status} ${r.message}`), { reply: r });
    return r.handle;
  }
  read = (h: Buffer, off: number, len: number) => this.request(T.READ, fields(h, BigInt(off), len));
  write = (h: Buffer, off: number, data: Buffer) => this.request(T.WRITE, fields(h, BigInt(off), data));
  close = (h: Buffer) => this.request(T.CLOSE, fields(h));
  stat = (p: string) => this.request(T.STAT, fields(p));
  lstat = (p: string) => this.request(T.LSTAT, fields(p));
  fstat = (h: Buffer) => this.request(T.FSTAT, fields(h));
  setstat = (p: string, a: Attrs) => this.request(T.SETSTAT, fields(p, { attrs: a }));
  fsetstat = (h: Buffer, a: Attrs) => this.request(T.FSETSTAT, fields(h, { attrs: a }));
  opendir = (p: string) => this.request(T.OPENDIR, fields(p));
  readdir = (h: Buffer) => this.request(T.READDIR, fields(h));
  remove = (p: string) => this.request(T.REMOVE, fields(p));
  mkdir = (p: string, a: Attrs = {}) => this.request(T.MKDIR, fields(p, { attrs: a }));
  rmdir = (p: string) => this.request(T.RMDIR, fields(p));
  realpath = (p: string) => this.request(T.REALPATH, fields(p));
  rename = (a: string, b: string) => this.request(T.RENAME, fields(a, b));
  readlink = (p: string) => this.request(T.READLINK, fields(p));
  /** OpenSSH's argument order: target, then the link. */
  symlink = (target: string, link: string) => this.request(T.SYMLINK, fields(target, link));
  extended = (name: string, ...rest: Parameters<typeof fields>) => this.request(T.EXTENDED, fields(name, ...rest));

  /** Reads a whole file through a handle, 32 KiB at a time. */
  async readFile(path: string): Promise<Buffer> {
    const h = await this.open(path, PF.READ);
    const parts: Buffer[] = [];
    for (let off = 0; ; ) {
      const r = await this.read(h, off, 32768);
      if (r.type !== T.DATA) break;
      parts.push(r.data!);
      off += r.data!.length;
    }
    await this.close(h);
    return Buffer.concat(parts);
  }

  /** Every entry of a directory listing. */
  async list(path: string): Promise<Array<{ filename: string; longname: string; attrs: Attrs }>> {
    const o = await this.opendir(path);
    if (!o.handle) throw new Error(`opendir ${path}: ${o.status} ${o.message}`);
    const all: Array<{ filename: string; longname: string; attrs: Attrs }> = [];
    for (;;) {
      const r = await this.readdir(o.handle);
      if (r.type !== T.NAME) break;
      all.push(...r.names!);
    }
    await this.close(o.handle);
    return all;
  }

  /** Sends EOF and waits for the channel to close; returns the exit status. */
  async end(): Promise<ExecResult> {
    this.channel.end();
    const r = await this.done;
    this.client.end();
    return r;
  }

  /** Closes the channel without EOF first. */
  async abort(): Promise<void> {
    this.channel.close();
    await once(this.channel, 'close').catch(() => undefined);
    this.client.end();
  }
}
