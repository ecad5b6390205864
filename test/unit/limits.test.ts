/**
 * Admission control as a unit: OpenSSH's MaxStartups random early drop (with an injected
 * random), PerSourceMaxStartups, maxConnections, PerSourcePenalties-style penalty boxes
 * (accrual, the `min` threshold, the `max` cap, expiry, the exempt list, overflow), the
 * `"start:rate:full"` parser, and the validation of every hardening option.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { InvalidOptionError, Server, type ServerOptions } from '../../src/index.js';
import { Admission, parseMaxStartups, type MaxStartups, type PenaltyOptions } from '../../src/limits.js';
import { validateOptions } from '../../src/options.js';

const OPENSSH: MaxStartups = { start: 10, rate: 30, full: 100 };

/** An Admission with no per-source cap and no penalties unless given. */
function admission(
  opts: {
    maxConnections?: number;
    maxStartups?: MaxStartups;
    perSource?: number;
    penalties?: PenaltyOptions | false;
    random?: () => number;
  } = {},
): Admission {
  return new Admission(
    opts.maxConnections ?? Infinity,
    opts.maxStartups ?? OPENSSH,
    opts.perSource ?? Infinity,
    opts.penalties ?? false,
    opts.random ?? (() => 0.999999),
  );
}

/** Admits `n` connections from distinct sources (with a random that never drops); fails if one is refused. */
function fill(a: Admission, n: number, prefix = '10.0.0.'): void {
  for (let i = 0; i < n; i++) assert.equal(a.admit(`${prefix}${i % 250}`), undefined, `admission ${i}`);
}

/** A small deterministic PRNG (mulberry32) for the statistical checks. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------------ MaxStartups

describe('MaxStartups random early drop (OpenSSH 10:30:100)', () => {
  it('admits every connection below `start` without consulting the random source', () => {
    let calls = 0;
    const a = admission({ random: () => (calls++, 0) });
    fill(a, 10);
    assert.equal(calls, 0);
  });

  it('at `start` refuses with probability `rate`%: random 0.29 is dropped, 0.30 is admitted', () => {
    let r = 0.29;
    const a = admission({ random: () => r });
    for (let i = 0; i < 10; i++) assert.equal(a.admit(`10.0.0.${i}`), undefined);
    assert.equal(a.admit('10.0.1.1'), 'max-startups');
    r = 0.3;
    assert.equal(a.admit('10.0.1.1'), undefined);
  });

  it('rises linearly from `rate` at `start` to 100% at `full`', () => {
    // p(n) = rate + (100 - rate) * (n - start) / (full - start)
    for (const [n, p] of [
      [10, 30],
      [19, 37],
      [55, 65],
      [91, 93],
      [99, 99.2222],
    ] as const) {
      let r = 1;
      const a = admission({ random: () => r });
      fill(a, n);
      r = (p - 0.01) / 100;
      assert.equal(a.admit('192.0.2.1'), 'max-startups', `n=${n}: random just below p=${p}% is dropped`);
      r = (p + 0.01) / 100;
      assert.equal(a.admit('192.0.2.1'), undefined, `n=${n}: random just above p=${p}% is admitted`);
    }
  });

  it('refuses every connection once `full` connections are unauthenticated, whatever the random', () => {
    const a = admission({ random: () => 0.999999 });
    fill(a, 100);
    for (let i = 0; i < 20; i++) assert.equal(a.admit('192.0.2.1'), 'max-startups');
  });

  it('drops about rate% of new connections in practice (10 000 trials at n=10 and n=55, seeded)', () => {
    for (const [n, expected] of [
      [10, 0.3],
      [55, 0.65],
    ] as const) {
      let r = 1;
      const random = prng(42);
      const a = admission({ random: () => r });
      fill(a, n);
      let dropped = 0;
      for (let i = 0; i < 10_000; i++) {
        r = random();
        if (a.admit('192.0.2.1') === 'max-startups') dropped++;
        else a.closed('192.0.2.1', false); // keep n constant
      }
      assert.ok(Math.abs(dropped / 10_000 - expected) < 0.02, `n=${n}: dropped ${dropped / 100}%, want ${expected * 100}%`);
    }
  });

  it('authenticated connections no longer count as startups', () => {
    const a = admission({ random: () => 0 }); // any probability > 0 drops
    fill(a, 10);
    assert.equal(a.admit('192.0.2.1'), 'max-startups');
    a.authenticated('10.0.0.0');
    assert.equal(a.admit('192.0.2.1'), undefined, 'one startup left the count');
    assert.equal(a.admit('192.0.2.2'), 'max-startups');
  });

  it('a connection that closes before authenticating leaves the count', () => {
    const a = admission({ random: () => 0 });
    fill(a, 10);
    a.closed('10.0.0.3', false);
    assert.equal(a.admit('192.0.2.1'), undefined);
  });

  it('start == full ("N") is a hard cap with no random drop', () => {
    let calls = 0;
    const a = admission({ maxStartups: parseMaxStartups('3'), random: () => (calls++, 0.999999) });
    fill(a, 3);
    assert.equal(a.admit('192.0.2.1'), 'max-startups');
    assert.equal(calls, 0);
  });
});

// ------------------------------------------------------------------------ per source, total

describe('perSourceMaxStartups and maxConnections', () => {
  it('caps unauthenticated connections per source; other sources still get in', () => {
    const a = admission({ perSource: 2 });
    assert.equal(a.admit('127.0.0.3'), undefined);
    assert.equal(a.admit('127.0.0.3'), undefined);
    assert.equal(a.admit('127.0.0.3'), 'per-source-max-startups');
    assert.equal(a.admit('127.0.0.2'), undefined);
    a.authenticated('127.0.0.3');
    assert.equal(a.admit('127.0.0.3'), undefined, 'an authenticated connection frees its per-source slot');
    assert.equal(a.admit('127.0.0.3'), 'per-source-max-startups');
    a.closed('127.0.0.3', false);
    assert.equal(a.admit('127.0.0.3'), undefined, 'a closed startup frees its slot');
  });

  it('maxConnections counts authenticated connections too, and frees a slot on close', () => {
    const a = admission({ maxConnections: 3 });
    fill(a, 3);
    for (let i = 0; i < 3; i++) a.authenticated(`10.0.0.${i}`);
    assert.equal(a.admit('192.0.2.1'), 'max-connections');
    a.closed('10.0.0.1', true);
    assert.equal(a.admit('192.0.2.1'), undefined);
    assert.equal(a.admit('192.0.2.2'), 'max-connections');
  });

  it('checks maxConnections before the penalty box, the penalty box before the startup caps', () => {
    const a = admission({ maxConnections: 1, perSource: 1, penalties: { min: 0, noAuth: 1 } });
    a.penalize('127.0.0.9', 'noAuth');
    assert.equal(a.admit('127.0.0.9'), 'penalty');
    assert.equal(a.admit('127.0.0.8'), undefined);
    assert.equal(a.admit('127.0.0.9'), 'max-connections');
    assert.equal(a.admit('127.0.0.8'), 'max-connections');
  });
});

// ---------------------------------------------------------------------------------- penalties

describe('penalty boxes (OpenSSH PerSourcePenalties)', () => {
  let now = 1_700_000_000_000;
  const realNow = Date.now;
  beforeEach(() => {
    now = 1_700_000_000_000;
    Date.now = () => now;
  });
  afterEach(() => {
    Date.now = realNow;
  });
  const on = (o: PenaltyOptions = {}): Admission => admission({ penalties: o });

  it('authFail adds 5 s: two failures (10 s) are not enforced, the third (15 s = min) is', () => {
    const a = on();
    a.penalize('127.0.0.5', 'authFail');
    a.penalize('127.0.0.5', 'authFail');
    assert.equal(a.penalized('127.0.0.5'), false);
    assert.equal(a.admit('127.0.0.5'), undefined);
    a.penalize('127.0.0.5', 'authFail');
    assert.equal(a.penalized('127.0.0.5'), true);
    assert.equal(a.admit('127.0.0.5'), 'penalty');
    assert.equal(a.admit('127.0.0.6'), undefined, 'another source is not affected');
  });

  it('failures in quick succession add up without decay (OpenSSH counts whole seconds): 3 failures 300 ms apart are boxed', () => {
    const a = on();
    for (let i = 0; i < 3; i++) {
      a.penalize('127.0.0.5', 'authFail');
      now += 300;
    }
    assert.equal(a.penalized('127.0.0.5'), true);
    now += 15_000 - 900;
    assert.equal(a.penalized('127.0.0.5'), false, 'the box still ends 15 s after the first failure');
  });

  it('noAuth adds 1 s: enforced at the 15th', () => {
    const a = on();
    for (let i = 0; i < 14; i++) a.penalize('127.0.0.5', 'noAuth');
    assert.equal(a.penalized('127.0.0.5'), false);
    a.penalize('127.0.0.5', 'noAuth');
    assert.equal(a.penalized('127.0.0.5'), true);
  });

  it('graceExceeded adds 10 s: enforced at the 2nd', () => {
    const a = on();
    a.penalize('127.0.0.5', 'graceExceeded');
    assert.equal(a.penalized('127.0.0.5'), false);
    a.penalize('127.0.0.5', 'graceExceeded');
    assert.equal(a.penalized('127.0.0.5'), true);
  });

  it('an enforced penalty expires when its accrued time has passed', () => {
    const a = on();
    for (let i = 0; i < 3; i++) a.penalize('127.0.0.5', 'authFail');
    now += 14_999;
    assert.equal(a.admit('127.0.0.5'), 'penalty');
    now += 2;
    assert.equal(a.admit('127.0.0.5'), undefined);
  });

  it('accrued time decays while nothing happens, so slow failures never reach min', () => {
    const a = on();
    for (let i = 0; i < 20; i++) {
      a.penalize('127.0.0.5', 'authFail');
      now += 5_000; // 5 s added, 5 s pass: the balance never grows past 5 s
    }
    assert.equal(a.penalized('127.0.0.5'), false, 'one failure every 5 s is never boxed');
    for (let i = 0; i < 3; i++) {
      a.penalize('127.0.0.5', 'authFail');
      now += 4_000; // 5 s added, 4 s pass: the balance grows by 1 s per failure
    }
    assert.equal(a.penalized('127.0.0.5'), false, '5 + 1 + 1 s');
    const b = on();
    b.penalize('127.0.0.5', 'authFail');
    b.penalize('127.0.0.5', 'authFail');
    now += 10_000;
    b.penalize('127.0.0.5', 'authFail');
    assert.equal(b.penalized('127.0.0.5'), false, 'an expired balance starts again from zero');
  });

  it('the penalty is capped at max (600 s)', () => {
    const a = on();
    for (let i = 0; i < 1000; i++) a.penalize('127.0.0.5', 'graceExceeded');
    now += 599_000;
    assert.equal(a.penalized('127.0.0.5'), true);
    now += 1_001;
    assert.equal(a.penalized('127.0.0.5'), false);
  });

  it('small custom values: authFail 0.05 s, min 0.1 s, max 0.2 s', () => {
    const a = on({ authFail: 0.05, min: 0.1, max: 0.2 });
    a.penalize('127.0.0.5', 'authFail');
    assert.equal(a.penalized('127.0.0.5'), false);
    a.penalize('127.0.0.5', 'authFail');
    assert.equal(a.penalized('127.0.0.5'), true);
    for (let i = 0; i < 100; i++) a.penalize('127.0.0.5', 'authFail');
    now += 201;
    assert.equal(a.penalized('127.0.0.5'), false, 'capped at max = 0.2 s');
  });

  it('exempt addresses and CIDR blocks are never penalized, IPv4-mapped IPv6 included', () => {
    const a = on({ exempt: ['127.0.0.0/8', '::1', '2001:db8::/32', '198.51.100.7'] });
    const exempt = ['127.0.0.5', '::ffff:127.0.0.5', '::1', '2001:db8::5', '198.51.100.7', '::ffff:198.51.100.7'];
    for (const s of exempt) {
      for (let i = 0; i < 10; i++) a.penalize(s, 'graceExceeded');
      assert.equal(a.penalized(s), false, s);
      assert.equal(a.admit(s), undefined, s);
    }
    for (const s of ['10.0.0.1', '198.51.100.8', '2001:db9::1', '::ffff:10.0.0.1']) {
      for (let i = 0; i < 2; i++) a.penalize(s, 'graceExceeded');
      assert.equal(a.penalized(s), true, s);
    }
  });

  it('an IPv4-mapped IPv6 exempt entry also exempts the plain IPv4 source', () => {
    const a = on({ exempt: ['::ffff:127.0.0.5'] });
    for (let i = 0; i < 3; i++) a.penalize('127.0.0.5', 'graceExceeded');
    assert.equal(a.penalized('127.0.0.5'), false);
  });

  it('a source without an address (a Duplex that is not a socket) is never penalized', () => {
    const a = on();
    for (let i = 0; i < 3; i++) a.penalize('', 'graceExceeded');
    assert.equal(a.admit(''), undefined);
  });

  it('when maxSources are tracked, new sources are not penalized (permissive overflow, as OpenSSH)', () => {
    const a = on({ maxSources: 2 });
    for (const s of ['10.0.0.1', '10.0.0.2']) for (let i = 0; i < 2; i++) a.penalize(s, 'graceExceeded');
    for (let i = 0; i < 5; i++) a.penalize('10.0.0.3', 'graceExceeded');
    assert.equal(a.penalized('10.0.0.3'), false, 'overflow is permissive');
    assert.equal(a.penalized('10.0.0.1'), true, 'tracked sources stay in their box');
    now += 21_000; // both expire
    for (let i = 0; i < 2; i++) a.penalize('10.0.0.3', 'graceExceeded');
    assert.equal(a.penalized('10.0.0.3'), true, 'expired entries are swept to make room');
  });

  it('penalties: false turns the boxes off', () => {
    const a = admission({ penalties: false });
    for (let i = 0; i < 100; i++) a.penalize('10.0.0.1', 'graceExceeded');
    assert.equal(a.admit('10.0.0.1'), undefined);
  });
});

// -------------------------------------------------------------------------- parseMaxStartups

describe('parseMaxStartups', () => {
  it('parses "start:rate:full", a single number (start = full, 100%), and objects', () => {
    assert.deepEqual(parseMaxStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
    assert.deepEqual(parseMaxStartups('5'), { start: 5, rate: 100, full: 5 });
    assert.deepEqual(parseMaxStartups('1:0:1'), { start: 1, rate: 0, full: 1 });
    assert.deepEqual(parseMaxStartups({ start: 2, rate: 50, full: 4 }), { start: 2, rate: 50, full: 4 });
  });

  for (const bad of ['', '10:30', '10:30:100:5', 'a:b:c', '0:30:100', '20:30:10', '10:101:100', '10:-1:100', '1.5:30:100', '10:30:1e9x']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseMaxStartups(bad), /start:rate:full/);
    });
  }
  it('rejects objects with missing or wrong fields', () => {
    assert.throws(() => parseMaxStartups({ start: 10, rate: 30 } as MaxStartups));
    assert.throws(() => parseMaxStartups({ start: 10, rate: NaN, full: 20 }));
  });
});

// ----------------------------------------------------------------------------- option checks

describe('validation of the hardening options', () => {
  const cases: Array<[keyof ServerOptions, unknown, string]> = [
    ['maxConnections', 0, 'zero'],
    ['maxConnections', -1, 'a negative number'],
    ['maxConnections', 1.5, 'a fraction'],
    ['maxConnections', '10', 'a string'],
    ['maxStartups', '10:30', 'two fields'],
    ['maxStartups', '0:30:100', 'start 0'],
    ['maxStartups', '20:30:10', 'full < start'],
    ['maxStartups', '10:150:100', 'rate > 100'],
    ['maxStartups', 10, 'a number'],
    ['maxStartups', null, 'null'],
    ['maxStartups', { start: 1, rate: 1 }, 'an object without full'],
    ['perSourceMaxStartups', 0, 'zero'],
    ['perSourceMaxStartups', NaN, 'NaN'],
    ['penalties', true, 'true'],
    ['penalties', null, 'null'],
    ['penalties', [], 'an array'],
    ['penalties', { authfail: 5 }, 'an unknown field'],
    ['penalties', { authFail: -1 }, 'a negative number of seconds'],
    ['penalties', { min: '15' }, 'a string number'],
    ['penalties', { max: Infinity }, 'Infinity'],
    ['penalties', { exempt: '10.0.0.0/8' }, 'exempt as a string'],
    ['penalties', { exempt: ['300.1.1.1'] }, 'a bad exempt address'],
    ['penalties', { exempt: ['10.0.0.0/33'] }, 'a bad exempt prefix'],
    ['penalties', { exempt: ['example.com'] }, 'a host name in exempt'],
    ['maxSessions', -1, 'a negative number'],
    ['maxSessions', 2.5, 'a fraction'],
    ['maxChannels', 0, 'zero'],
    ['keepaliveInterval', -1, 'a negative number'],
    ['keepaliveInterval', 1.5, 'a fraction'],
    ['keepaliveInterval', 2 ** 31, 'more than a timer can hold'],
    ['keepaliveCountMax', 0, 'zero'],
    ['requireStrictKex', 'yes', 'a string'],
    ['requireStrictKex', 1, 'a number'],
    ['hookTimeout', -5, 'a negative number'],
    ['hookTimeout', '200', 'a string'],
  ];
  for (const [option, value, what] of cases) {
    it(`throws InvalidOptionError naming "${option}" for ${what}`, () => {
      assert.throws(
        () => validateOptions({ [option]: value }),
        (err: unknown) => err instanceof InvalidOptionError && err.option === option,
      );
    });
  }

  it('accepts the documented forms', () => {
    const ok: ServerOptions[] = [
      { maxConnections: 1 },
      { maxConnections: Infinity },
      { maxStartups: '10:30:100' },
      { maxStartups: '5' },
      { maxStartups: { start: 3, rate: 50, full: 9 } },
      { perSourceMaxStartups: 3 },
      { penalties: false },
      { penalties: {} },
      { penalties: { authFail: 0.5, noAuth: 0, graceExceeded: 2, min: 1, max: 60, maxSources: 10, exempt: ['10.0.0.0/8', '::1', 'fe80::/10'] } },
      { maxSessions: 0 },
      { maxChannels: 1 },
      { keepaliveInterval: 0 },
      { keepaliveInterval: 15_000, keepaliveCountMax: 3 },
      { requireStrictKex: true },
      { hookTimeout: 0 },
    ];
    for (const o of ok) assert.doesNotThrow(() => validateOptions(o), JSON.stringify(o));
  });

  it('the Server constructor runs the same checks', () => {
    assert.throws(() => new Server({ maxStartups: 'x' }), { code: 'ERR_INVALID_OPTION', option: 'maxStartups' });
    assert.throws(() => new Server({ penalties: { exempt: ['nope'] } }), { code: 'ERR_INVALID_OPTION', option: 'penalties' });
  });
});
