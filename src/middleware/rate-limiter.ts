/**
 * {@link rateLimiter}: a token bucket per source address, checked before the SSH handshake.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import type { Context } from '../context.js';
import { InvalidOptionError } from '../errors.js';
import type { ConnCallback, Middleware } from '../hooks.js';

/** Options of {@link rateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens added to each source's bucket per second: the sustained rate allowed. */
  rate: number;
  /** Bucket size: how many connections (or sessions) a source may make in a burst. */
  burst: number;
  /**
   * Sources tracked at once; when full, the one seen least recently is forgotten (it starts
   * again with a full bucket).
   * @defaultValue `10000`
   */
  maxEntries?: number;
  /** The bucket a connection counts against. Unset: its remote address. */
  key?: (ctx: Context) => string;
  /**
   * What the `middleware` form writes to stderr before exiting 1.
   * @defaultValue `"rate limit exceeded, please try again later"`
   */
  message?: string;
  /** Milliseconds of the longest wait for a refused client's side of the close. @defaultValue `1000` */
  closeTimeout?: number;
  /** The clock, in milliseconds; for tests. @defaultValue `performance.now` */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * Per-source token buckets in a bounded LRU, usable at two points:
 *
 * - `connCallback`, set as the server's `connCallback`: checked when a connection is accepted,
 *   **before** the key exchange and authentication (the expensive part), so a flood costs one
 *   map lookup per connection. A refused client gets a clean close (a FIN, no SSH bytes, as
 *   sshd's MaxStartups does); OpenSSH prints "Connection closed by remote host". The
 *   connection is reported to `connectionFailedCallback` as `ERR_CONNECTION_DROPPED`.
 * - `middleware`, for `server.use()`: checked per session, after authentication, like wish's
 *   `ratelimiter`; a refused session gets `message` on stderr and exit status 1.
 *
 * @example
 * ```ts
 * const limiter = rateLimiter({ rate: 1, burst: 5, maxEntries: 10_000 });
 * const server = new Server({ connCallback: limiter.connCallback });
 * ```
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxEntries: number;
  private readonly keyOf: (ctx: Context) => string;
  private readonly message: string;
  private readonly closeTimeout: number;
  private readonly now: () => number;

  /** Validates `options`; throws `InvalidOptionError` naming a bad one. */
  constructor(options: RateLimiterOptions) {
    const { rate, burst, maxEntries = 10_000, closeTimeout = 1000 } = options ?? ({} as RateLimiterOptions);
    if (typeof rate !== 'number' || !(rate >= 0) || !Number.isFinite(rate)) {
      throw new InvalidOptionError('rate', 'must be a number of tokens per second, 0 or more');
    }
    if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) {
      throw new InvalidOptionError('burst', 'must be a whole number of at least 1');
    }
    if (typeof maxEntries !== 'number' || !Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidOptionError('maxEntries', 'must be a whole number of at least 1');
    }
    if (typeof closeTimeout !== 'number' || !Number.isInteger(closeTimeout) || closeTimeout < 0) {
      throw new InvalidOptionError('closeTimeout', 'must be a whole number of milliseconds');
    }
    this.rate = rate;
    this.burst = burst;
    this.maxEntries = maxEntries;
    this.closeTimeout = closeTimeout;
    this.keyOf = options.key ?? ((ctx) => ctx.remoteAddress);
    this.message = options.message ?? 'rate limit exceeded, please try again later';
    this.now = options.now ?? (() => performance.now());
  }

  /** How many sources are tracked now (at most `maxEntries`). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token from `key`'s bucket: `true` if there was one, `false` if the source is over its rate. */
  allow(key: string): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key);
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.last) / 1000) * this.rate);
      b.last = now;
    } else {
      b = { tokens: this.burst, last: now };
      if (this.buckets.size >= this.maxEntries) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** The pre-handshake check, to set as `ServerOptions.connCallback`. */
  readonly connCallback: ConnCallback = async (ctx, socket) => {
    if (this.allow(this.keyOf(ctx))) return undefined;
    await closeGently(socket, this.closeTimeout);
    return null;
  };

  /** The per-session check, for `server.use()`. */
  readonly middleware: Middleware = (next) => async (session) => {
    if (!this.allow(this.keyOf(session.context))) {
      session.stderr.write(`${this.message}\n`);
      await session.exit(1);
      return;
    }
    await next(session);
  };
}

/**
 * Makes a {@link RateLimiter}: `rate` connections per second per source, bursts of `burst`,
 * at most `maxEntries` sources remembered.
 *
 * @example
 * ```ts
 * const limiter = rateLimiter({ rate: 0.5, burst: 3 });
 * const server = new Server({ connCallback: limiter.connCallback }); // before the handshake
 * server.use(limiter.middleware);                                  // or per session, after auth
 * ```
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}

/**
 * Sends a FIN and waits (at most `ms`) until it is out, reading and discarding what the
 * client sends meanwhile so the kernel does not answer the close with a reset.
 */
function closeGently(socket: Duplex, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('finish', done);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    socket.on('error', () => undefined);
    socket.once('finish', done);
    socket.once('close', done);
    socket.resume();
    socket.end();
  });
}
