/**
 * Raw SSH messages from an ssh2 *client*, for tests that must send what ssh2's client API
 * cannot: a bare session channel, any channel request with want-reply, any global request,
 * any channel type. Test-only; it reaches into the client's private protocol object.
 */
import ssh2 from 'ssh2';
import protoUtils from 'ssh2/lib/protocol/utils.js';
import channelModule from 'ssh2/lib/Channel.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Encodes SSH wire fields. */
export class Wire {
  private parts: Buffer[] = [];
  byte(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  bool(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  str(v: string | Buffer): this {
    const b = typeof v === 'string' ? Buffer.from(v) : v;
    this.u32(b.length);
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  buf(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Sends one raw payload (message type byte first) on the client's transport. */
export function sendRaw(client: ssh2.Client, payload: Buffer): void {
  const proto = (client as Any)._protocol;
  const w = proto._packetRW.write;
  const start = w.allocStart;
  const packet = w.alloc(payload.length);
  payload.copy(packet, start);
  protoUtils.sendPacket(proto, w.finalize(packet));
}

/** Opens a channel of any type; resolves with the channel or rejects with the open failure. */
export function openChannel(client: ssh2.Client, type: string, extra: Buffer = Buffer.alloc(0)): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ssh2.ClientChannel): void => (err ? reject(err) : resolve(ch));
    (cb as Any).type = type === 'session' ? 'session' : type;
    const id = (client as Any)._chanMgr.add(cb);
    const payload = new Wire()
      .byte(90)
      .str(type)
      .u32(id)
      .u32(channelModule.MAX_WINDOW)
      .u32(channelModule.PACKET_SIZE)
      .raw(extra)
      .buf();
    sendRaw(client, payload);
  });
}

/**
 * Sends a channel request. With wantReply, resolves true/false with the server's answer
 * (rejects after `timeoutMs` if none came: a missing reply is a bug the tests look for).
 */
export function channelRequest(
  client: ssh2.Client,
  ch: ssh2.ClientChannel,
  type: string,
  wantReply: boolean,
  data: Buffer = Buffer.alloc(0),
  timeoutMs = 3000,
): Promise<boolean | undefined> {
  const c = ch as Any;
  const payload = new Wire().byte(98).u32(c.outgoing.id).str(type).bool(wantReply).raw(data).buf();
  if (!wantReply) {
    sendRaw(client, payload);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${type}`)), timeoutMs);
    c._callbacks.push((failed: boolean) => {
      clearTimeout(timer);
      resolve(!failed);
    });
    sendRaw(client, payload);
  });
}

/** Sends a global request and resolves with the server's answer (and any reply data). */
export function globalRequest(
  client: ssh2.Client,
  name: string,
  data: Buffer = Buffer.alloc(0),
  timeoutMs = 3000,
): Promise<{ ok: boolean; data?: Buffer }> {
  const proto = (client as Any)._protocol;
  const h = proto._handlers;
  return new Promise((resolve, reject) => {
    const origOk = h.REQUEST_SUCCESS;
    const origFail = h.REQUEST_FAILURE;
    const restore = (): void => {
      h.REQUEST_SUCCESS = origOk;
      h.REQUEST_FAILURE = origFail;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      restore();
      reject(new Error(`no reply to global request ${name}`));
    }, timeoutMs);
    h.REQUEST_SUCCESS = (_p: unknown, d: Buffer | null) => {
      restore();
      resolve({ ok: true, ...(d ? { data: d } : {}) });
    };
    h.REQUEST_FAILURE = () => {
      restore();
      resolve({ ok: false });
    };
    sendRaw(client, new Wire().byte(80).str(name).bool(true).raw(data).buf());
  });
}

/** pty-req data (RFC 4254 §6.2). */
export function ptyData(term: string, cols: number, rows: number, modes: Buffer = Buffer.from([0]), px = [0, 0]): Buffer {
  return new Wire().str(term).u32(cols).u32(rows).u32(px[0]!).u32(px[1]!).str(modes).buf();
}

/** window-change data (RFC 4254 §6.7). */
export function windowData(cols: number, rows: number, px = [0, 0]): Buffer {
  return new Wire().u32(cols).u32(rows).u32(px[0]!).u32(px[1]!).buf();
}
