/**
 * Client address matching as OpenSSH does it: CIDR lists (certificate `source-address`) and
 * sshd pattern lists (`authorized_keys` `from=`), for IPv4, IPv6 and IPv4-mapped IPv6.
 *
 * @internal
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
type Bytes = Uint8Array;

/**
 * The address as sshd sees it: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
 * dual-stack listener reports for IPv4 clients) becomes plain IPv4; IPv6 is lower-cased.
 */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  return m && isIPv4(m[1]!) ? m[1]! : a;
}

function ipv4Bytes(s: string): Bytes | undefined {
  if (!isIPv4(s)) return undefined;
  return Uint8Array.from(s.split('.').map(Number));
}

function ipv6Bytes(s: string): Bytes | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let text = s;
  // An embedded IPv4 tail (::ffff:192.0.2.1) stands for the last two 16-bit groups.
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':') + 1;
    const b = ipv4Bytes(text.slice(cut));
    if (!b) return undefined;
    text = `${text.slice(0, cut)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (p: string): number[] => (p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - left.length - right.length : 0;
  if (fill < 0) return undefined;
  const all = [...left, ...new Array<number>(fill).fill(0), ...right];
  if (all.length !== 8 || all.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** The bytes of an address (after {@link normalizeAddress}), or undefined if it is not an IP. */
export function addressBytes(address: string): Bytes | undefined {
  const a = normalizeAddress(address);
  return ipv4Bytes(a) ?? ipv6Bytes(a);
}

/** A parsed `address/masklen` (or a bare address, a full-length mask). */
interface Cidr {
  bytes: Bytes;
  bits: number;
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a bare address; undefined if malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', len, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const bytes = addressBytes(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (len === undefined) return { bytes, bits: max };
  if (!/^\d{1,3}$/.test(len) || Number(len) > max) return undefined;
  const bits = Number(len);
  // OpenSSH rejects a network address with host bits set (addr_match_cidr_list → addr_netmatch).
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.min(8, Math.max(0, bits - 8 * i));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((bytes[i]! & ~mask & 0xff) !== 0) return undefined;
  }
  return { bytes, bits };
}

function inCidr(addr: Bytes, net: Cidr): boolean {
  if (addr.length !== net.bytes.length) return false;
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.min(8, Math.max(0, net.bits - 8 * i));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((addr[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Whether `address` is in a certificate's `source-address` list: comma-separated CIDR blocks
 * or addresses, no wildcards, no negation (OpenSSH `addr_match_cidr_list`).
 * @returns `true`/`false`, or `undefined` when the list is malformed (callers must deny).
 */
export function matchCidrList(address: string, list: string): boolean | undefined {
  const entries = list.split(',');
  const nets = entries.map((e) => parseCidr(e));
  if (entries.length === 0 || nets.some((n) => n === undefined)) return undefined;
  const addr = addressBytes(address);
  return addr !== undefined && nets.some((n) => inCidr(addr, n!));
}

/** sshd's `match_pattern`: `*` any run, `?` one character, case-insensitive here (addresses). */
function globMatch(text: string, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`,
    'is',
  );
  return re.test(text);
}

/**
 * Whether `address` matches an `authorized_keys` `from="…"` pattern list: comma-separated
 * entries, each a wildcard pattern (`*`, `?`) or a CIDR block, optionally negated with `!`.
 * A matching negated entry denies at once; otherwise one positive match allows. Host names
 * are not resolved (as sshd with `UseDNS no`): patterns are matched against the address text.
 * @returns `true`/`false`, or `undefined` when a CIDR entry is malformed (callers must deny).
 * @see sshd(8) AUTHORIZED_KEYS FILE FORMAT, ssh_config(5) PATTERNS
 */
export function matchFromPatterns(address: string, patterns: string): boolean | undefined {
  const addr = normalizeAddress(address);
  const bytes = addressBytes(addr);
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).trim();
    if (pattern === '') continue;
    let hit: boolean;
    if (pattern.includes('/')) {
      const net = parseCidr(pattern);
      if (!net) return undefined;
      hit = bytes !== undefined && inCidr(bytes, net);
    } else {
      hit = globMatch(addr, normalizeAddress(pattern)) || globMatch(address, pattern);
    }
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}
