/**
 * Admission control at accept time, before any SSH work: a cap on all connections, OpenSSH's
 * MaxStartups random early drop and PerSourceMaxStartups for connections not yet
 * authenticated, and PerSourcePenalties-style penalty boxes for sources that keep failing.
 *
 * @module
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Random early drop of unauthenticated connections, as OpenSSH's `MaxStartups start:rate:full`:
 * with `start` or more connections not yet authenticated, a new one is refused with
 * probability `rate`%, rising linearly to 100% at `full`.
 */
export interface MaxStartups {
  /** Unauthenticated connections before any are refused. */
  start: number;
  /** Percent refused at `start`. */
  rate: number;
  /** Unauthenticated connections at which every new one is refused. */
  full: number;
}

/**
 * Penalty boxes per source address, as OpenSSH's `PerSourcePenalties`: each bad event adds
 * seconds of penalty; once a source has `min` seconds accrued, its new connections are refused
 * until the penalty has run out. Set `penalties: false` to turn them off.
 */
export interface PenaltyOptions {
  /** Seconds added when a connection ends after failed authentication. @defaultValue 5 */
  authFail?: number;
  /** Seconds added when a connection ends without trying to authenticate. @defaultValue 1 */
  noAuth?: number;
  /** Seconds added when a connection is cut by the handshake timeout. @defaultValue 10 */
  graceExceeded?: number;
  /** Seconds that must accrue before a source is refused. @defaultValue 15 */
  min?: number;
  /** The longest penalty, in seconds. @defaultValue 600 */
  max?: number;
  /** Sources tracked at once; beyond that new sources are not penalized. @defaultValue 65536 */
  maxSources?: number;
  /** Addresses or CIDR blocks never penalized, e.g. `["10.0.0.0/8", "::1"]`. @defaultValue [] */
  exempt?: string[];
}

/** Why a connection was refused at accept time. */
export type RefusalReason = 'max-connections' | 'max-startups' | 'per-source-max-startups' | 'penalty';

/** Penalty events. */
export type PenaltyEvent = 'authFail' | 'noAuth' | 'graceExceeded';

const PENALTY_DEFAULTS: Required<PenaltyOptions> = {
  authFail: 5,
  noAuth: 1,
  graceExceeded: 10,
  min: 15,
  max: 600,
  maxSources: 65536,
  exempt: [],
};

interface Penalty {
  /** When the penalty runs out (ms since the epoch). */
  until: number;
  /** Whether it crossed `min` and new connections are refused until `until`. */
  enforced: boolean;
  /** When the current one-second accrual window opened (ms since the epoch). */
  last: number;
}

/** @internal Counts and decides admissions for one server. */
export class Admission {
  private total = 0;
  private unauthenticated = 0;
  private readonly perSource = new Map<string, number>();
  private readonly penalties = new Map<string, Penalty>();
  private readonly penaltyOptions: Required<PenaltyOptions> | undefined;
  private readonly exempt = new BlockList();

  constructor(
    private readonly maxConnections: number,
    private readonly maxStartups: MaxStartups,
    private readonly perSourceMaxStartups: number,
    penalties: PenaltyOptions | false,
    private readonly random: () => number = Math.random,
  ) {
    this.penaltyOptions = penalties === false ? undefined : { ...PENALTY_DEFAULTS, ...penalties };
    for (const entry of this.penaltyOptions?.exempt ?? []) addToBlockList(this.exempt, entry);
  }

  /** Decides whether to admit a new connection from `source`; counts it when admitted. */
  admit(source: string): RefusalReason | undefined {
    if (this.total >= this.maxConnections) return 'max-connections';
    if (this.penalized(source)) return 'penalty';
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= this.perSourceMaxStartups) return 'per-source-max-startups';
    const { start, rate, full } = this.maxStartups;
    const n = this.unauthenticated;
    if (n >= full) return 'max-startups';
    if (n >= start) {
      const p = rate + ((100 - rate) * (n - start)) / Math.max(1, full - start);
      if (this.random() * 100 < p) return 'max-startups';
    }
    this.total++;
    this.unauthenticated++;
    this.perSource.set(source, fromSource + 1);
    return undefined;
  }

  /** An admitted connection authenticated: it no longer counts as a startup. */
  authenticated(source: string): void {
    this.leaveStartup(source);
  }

  /** An admitted connection closed. */
  closed(source: string, wasAuthenticated: boolean): void {
    this.total--;
    if (!wasAuthenticated) this.leaveStartup(source);
  }

  /** Adds penalty seconds for `source` (a no-op when penalties are off or it is exempt). */
  penalize(source: string, event: PenaltyEvent): void {
    const o = this.penaltyOptions;
    if (!o || source === '' || this.isExempt(source)) return;
    const now = Date.now();
    let p = this.penalties.get(source);
    if (!p) {
      if (this.penalties.size >= o.maxSources) this.sweep(now);
      if (this.penalties.size >= o.maxSources) return; // permissive on overflow, as OpenSSH
      p = { until: now, enforced: false, last: now };
      this.penalties.set(source, p);
    }
    // OpenSSH counts in whole seconds, so failures in quick succession add up without decay
    // (three auth failures in a row reach min = 15 s). Counting in milliseconds would let the
    // time between them decay the balance below min forever; so an event within a second of
    // the one that opened the current one-second window counts as of then.
    if (now - p.last >= 1000) p.last = now;
    const t = p.last;
    p.until = Math.min(Math.max(p.until, t) + o[event] * 1000, t + o.max * 1000);
    if (p.until - t >= o.min * 1000) p.enforced = true;
  }

  /** Whether `source` is refused now because of its penalty. */
  penalized(source: string): boolean {
    const p = this.penalties.get(source);
    if (!p) return false;
    if (p.until <= Date.now()) {
      this.penalties.delete(source);
      return false;
    }
    return p.enforced;
  }

  private isExempt(source: string): boolean {
    const type = isIPv4(source) ? 'ipv4' : isIPv6(source) ? 'ipv6' : undefined;
    if (!type) return false;
    return this.exempt.check(source, type) || (type === 'ipv6' && source.startsWith('::ffff:') && this.exempt.check(source.slice(7), 'ipv4'));
  }

  private leaveStartup(source: string): void {
    this.unauthenticated--;
    const n = (this.perSource.get(source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(source);
    else this.perSource.set(source, n);
  }

  private sweep(now: number): void {
    for (const [k, p] of this.penalties) if (p.until <= now) this.penalties.delete(k);
  }
}

/** Adds an address or CIDR block to a BlockList; throws on a malformed entry. */
export function addToBlockList(list: BlockList, entry: string): void {
  const [addr, bits] = entry.split('/');
  const type = isIPv4(addr ?? '') ? 'ipv4' : isIPv6(addr ?? '') ? 'ipv6' : undefined;
  if (!type || addr === undefined) throw new Error(`"${entry}" is not an IP address or CIDR block`);
  if (bits === undefined) list.addAddress(addr, type);
  else {
    const prefix = Number(bits);
    const max = type === 'ipv4' ? 32 : 128;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`"${entry}" has a bad prefix length`);
    list.addSubnet(addr, prefix, type);
  }
}

/** Parses `"10:30:100"` or an object into {@link MaxStartups}; throws on bad values. */
export function parseMaxStartups(v: string | MaxStartups): MaxStartups {
  const m =
    typeof v === 'string'
      ? (() => {
          const parts = v.split(':').map(Number);
          if (parts.length === 1) return { start: parts[0]!, rate: 100, full: parts[0]! };
          // "10:30:100:5" is a typo, not "10:30:100": exactly three fields.
          return parts.length === 3 ? { start: parts[0]!, rate: parts[1]!, full: parts[2]! } : { start: NaN, rate: NaN, full: NaN };
        })()
      : v;
  const ok =
    Number.isInteger(m.start) && Number.isInteger(m.full) && Number.isFinite(m.rate) &&
    m.start >= 1 && m.full >= m.start && m.rate >= 0 && m.rate <= 100;
  if (!ok) throw new Error('must be "start:rate:full" with 1 <= start <= full and 0 <= rate <= 100');
  return { start: m.start, rate: m.rate, full: m.full };
}
