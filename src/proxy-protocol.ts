/**
 * The PROXY protocol (versions 1 and 2) that load balancers such as HAProxy, nginx `stream`
 * and cloud NLBs put in front of a TCP stream to pass on the real client address.
 *
 * @see https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 * @module
 */
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { GlidesshError } from './errors.js';
import { addToBlockList } from './limits.js';

/** Settings of the `proxyProtocol` server option. */
export interface ProxyProtocolOptions {
  /**
   * Addresses or CIDR blocks of the proxies allowed to connect; a connection from anywhere
   * else is dropped. Unset: any peer may send a header (only safe when the server is not
   * reachable except through the proxy).
   */
  trusted?: string[];
  /**
   * Milliseconds to wait for the header.
   * @defaultValue `10000`
   */
  timeout?: number;
}

/** What a PROXY header said. */
export interface ProxyHeader {
  /** 1 (text) or 2 (binary). */
  version: 1 | 2;
  /** `'LOCAL'` (a health check from the proxy itself: the real addresses apply) or `'PROXY'`. */
  command: 'LOCAL' | 'PROXY';
  /** The client's address, when the header carried one. */
  sourceAddress?: string;
  /** The client's port. */
  sourcePort?: number;
  /** The address the client connected to on the proxy. */
  destinationAddress?: string;
  /** The port the client connected to on the proxy. */
  destinationPort?: number;
}

/** A connection's PROXY header was missing, malformed, late or from an untrusted peer. Code `ERR_PROXY_PROTOCOL`. */
export class ProxyProtocolError extends GlidesshError {
  constructor(message: string) {
    super('ERR_PROXY_PROTOCOL', `PROXY protocol: ${message}`);
  }
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;
/** The longest v2 header accepted (addresses plus TLVs); real proxies send far less. */
const V2_MAX = 16 + 1024;

/**
 * Parses a PROXY header at the start of `buf`. Returns `undefined` while more bytes are
 * needed, else the header and its length; throws {@link ProxyProtocolError} when it is
 * missing or malformed.
 *
 * @example
 * ```ts
 * parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 22\r\nSSH-2.0-…'));
 * // { header: { version: 1, command: 'PROXY', sourceAddress: '203.0.113.7', … }, length: 42 }
 * ```
 */
export function parseProxyHeader(buf: Buffer):
  | {
      /** The parsed header. */
      header: ProxyHeader;
      /** Its length in bytes (the SSH stream starts after it). */
      length: number;
    }
  | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] === 0x50) return parseV1(buf);
  if (buf[0] === 0x0d) return parseV2(buf);
  throw new ProxyProtocolError('no header');
}

function parseV1(buf: Buffer): { header: ProxyHeader; length: number } | undefined {
  const prefix = 'PROXY ';
  const n = Math.min(buf.length, prefix.length);
  if (buf.toString('latin1', 0, n) !== prefix.slice(0, n)) throw new ProxyProtocolError('no header');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (buf.length >= V1_MAX) throw new ProxyProtocolError('v1 header too long');
    return undefined;
  }
  if (end + 2 > V1_MAX) throw new ProxyProtocolError('v1 header too long');
  const parts = buf.toString('latin1', 0, end).split(' ');
  if (parts[1] === 'UNKNOWN') return { header: { version: 1, command: 'LOCAL' }, length: end + 2 };
  const [, family, src, dst, sport, dport, extra] = parts;
  const want = family === 'TCP4' ? 4 : family === 'TCP6' ? 6 : 0;
  if (!want || extra !== undefined || isIP(src ?? '') !== want || isIP(dst ?? '') !== want) {
    throw new ProxyProtocolError('malformed v1 header');
  }
  return {
    header: {
      version: 1,
      command: 'PROXY',
      sourceAddress: src!,
      sourcePort: port(sport),
      destinationAddress: dst!,
      destinationPort: port(dport),
    },
    length: end + 2,
  };
}

function port(text: string | undefined): number {
  if (!text || !/^\d{1,5}$/.test(text) || (text.length > 1 && text.startsWith('0')) || Number(text) > 65535) {
    throw new ProxyProtocolError('malformed v1 port');
  }
  return Number(text);
}

function parseV2(buf: Buffer): { header: ProxyHeader; length: number } | undefined {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) throw new ProxyProtocolError('no header');
  if (buf.length < 16) return undefined;
  const verCmd = buf[12]!;
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError('unsupported v2 version');
  if (16 + len > V2_MAX) throw new ProxyProtocolError('v2 header too long');
  if (buf.length < 16 + len) return undefined;
  const length = 16 + len;
  const command = verCmd & 0x0f;
  if (command === 0) return { header: { version: 2, command: 'LOCAL' }, length };
  if (command !== 1) throw new ProxyProtocolError('unknown v2 command');
  const family = famProto >> 4;
  const body = buf.subarray(16, length);
  if (family === 1 && body.length >= 12) {
    return {
      header: {
        version: 2,
        command: 'PROXY',
        sourceAddress: [...body.subarray(0, 4)].join('.'),
        destinationAddress: [...body.subarray(4, 8)].join('.'),
        sourcePort: body.readUInt16BE(8),
        destinationPort: body.readUInt16BE(10),
      },
      length,
    };
  }
  if (family === 2 && body.length >= 36) {
    return {
      header: {
        version: 2,
        command: 'PROXY',
        sourceAddress: ipv6(body.subarray(0, 16)),
        destinationAddress: ipv6(body.subarray(16, 32)),
        sourcePort: body.readUInt16BE(32),
        destinationPort: body.readUInt16BE(34),
      },
      length,
    };
  }
  // UNSPEC, UNIX or a family without room for its addresses: the connection's own addresses apply.
  if (family === 0 || family === 3) return { header: { version: 2, command: 'LOCAL' }, length };
  throw new ProxyProtocolError('malformed v2 addresses');
}

function ipv6(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff) {
    return `::ffff:${[...b.subarray(12, 16)].join('.')}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * @internal Reads the PROXY header off `socket`, puts back what follows it, and resolves with
 * the header; rejects (without destroying the socket) on a missing or malformed header, on
 * timeout, or when the socket closes first.
 */
export function readProxyHeader(socket: Duplex, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, header?: ProxyHeader, rest?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(header!);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      try {
        const parsed = parseProxyHeader(buf);
        if (parsed) finish(undefined, parsed.header, buf.subarray(parsed.length));
      } catch (err) {
        finish(err as Error);
      }
    };
    const onClose = (): void => finish(new ProxyProtocolError('closed before the header'));
    const timer = setTimeout(() => finish(new ProxyProtocolError(`no header within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** @internal A trust check for proxy peers, from `ProxyProtocolOptions.trusted`. */
export function trustCheck(trusted: string[] | undefined): (address: string) => boolean {
  if (!trusted) return () => true;
  const list = new BlockList();
  for (const entry of trusted) addToBlockList(list, entry);
  return (address) => {
    const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    const type = isIP(plain) === 4 ? 'ipv4' : isIP(plain) === 6 ? 'ipv6' : undefined;
    return type !== undefined && list.check(plain, type);
  };
}
