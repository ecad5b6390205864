import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { crlfKernel, KERNEL_MAX_INPUT, useCrlfKernel } from '../../src/internal/crlf-wasm.js';
import { CrlfEncoder, encodeTerminalModes, parseTerminalModes, TERMINAL_MODE_NAMES } from '../../src/pty.js';

/** `parseTerminalModes` returns a null-prototype object; compare its own entries. */
function parsed(hex: string | Buffer): Record<string, number> {
  return { ...parseTerminalModes(typeof hex === 'string' ? Buffer.from(hex.replace(/\s/g, ''), 'hex') : hex) };
}

describe('TERMINAL_MODE_NAMES', () => {
  it('maps RFC 4254 §8 and RFC 8160 opcodes to names', () => {
    const expected: Record<number, string> = {
      1: 'VINTR', 2: 'VQUIT', 3: 'VERASE', 4: 'VKILL', 5: 'VEOF', 6: 'VEOL', 7: 'VEOL2', 8: 'VSTART',
      9: 'VSTOP', 10: 'VSUSP', 11: 'VDSUSP', 12: 'VREPRINT', 13: 'VWERASE', 14: 'VLNEXT', 15: 'VFLUSH',
      16: 'VSWTCH', 17: 'VSTATUS', 18: 'VDISCARD',
      30: 'IGNPAR', 31: 'PARMRK', 32: 'INPCK', 33: 'ISTRIP', 34: 'INLCR', 35: 'IGNCR', 36: 'ICRNL',
      37: 'IUCLC', 38: 'IXON', 39: 'IXANY', 40: 'IXOFF', 41: 'IMAXBEL', 42: 'IUTF8',
      50: 'ISIG', 51: 'ICANON', 52: 'XCASE', 53: 'ECHO', 54: 'ECHOE', 55: 'ECHOK', 56: 'ECHONL',
      57: 'NOFLSH', 58: 'TOSTOP', 59: 'IEXTEN', 60: 'ECHOCTL', 61: 'ECHOKE', 62: 'PENDIN',
      70: 'OPOST', 71: 'OLCUC', 72: 'ONLCR', 73: 'OCRNL', 74: 'ONOCR', 75: 'ONLRET',
      90: 'CS7', 91: 'CS8', 92: 'PARENB', 93: 'PARODD',
      128: 'TTY_OP_ISPEED', 129: 'TTY_OP_OSPEED',
    };
    assert.deepEqual({ ...TERMINAL_MODE_NAMES }, expected);
    assert.equal(TERMINAL_MODE_NAMES[0], undefined);
    assert.ok(Object.isFrozen(TERMINAL_MODE_NAMES));
  });
});

describe('parseTerminalModes', () => {
  it('decodes an OpenSSH-style blob', () => {
    assert.deepEqual(parsed('01 00000003 35 00000001 80 00009600 00'), { VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 });
  });

  it('decodes what encodeTerminalModes built', () => {
    const modes = {
      VINTR: 3, VQUIT: 28, VERASE: 127, VKILL: 21, VEOF: 4, VSTART: 17, VSTOP: 19, VSUSP: 26,
      IGNPAR: 0, ICRNL: 1, IXON: 1, IMAXBEL: 1, IUTF8: 1, ISIG: 1, ICANON: 1, ECHO: 1, ECHOE: 1,
      ECHOK: 1, IEXTEN: 1, ECHOCTL: 1, ECHOKE: 1, OPOST: 1, ONLCR: 1, CS8: 1,
      TTY_OP_ISPEED: 38400, TTY_OP_OSPEED: 38400,
    };
    assert.deepEqual(parsed(encodeTerminalModes(modes)), modes);
  });

  it('stops at TTY_OP_END', () => {
    assert.deepEqual(parsed('01 00000003 00 35 00000001'), { VINTR: 3 });
    assert.deepEqual(parsed('00 01 00000003'), {});
  });

  it('stops at opcodes 160-255', () => {
    assert.deepEqual(parsed('01 00000003 a0 00000001 35 00000001 00'), { VINTR: 3 });
    assert.deepEqual(parsed('ff 00000001 35 00000001 00'), {});
  });

  it('skips opcodes 1-159 that have no name, value included', () => {
    assert.deepEqual(parsed('13 00000035 35 00000001 9f ffffffff 48 00000002 00'), { ECHO: 1, ONLCR: 2 });
  });

  it('keeps what it decoded before a truncated pair', () => {
    assert.deepEqual(parsed('01 00000003 35 000000'), { VINTR: 3 });
    assert.deepEqual(parsed('01 00000003 35'), { VINTR: 3 });
    assert.deepEqual(parsed('01 00000003'), { VINTR: 3 }); // no TTY_OP_END at all
  });

  it('returns an empty object for empty input', () => {
    assert.deepEqual(parsed(''), {});
  });

  it('reads full uint32 values and keeps the last of a repeated mode', () => {
    assert.deepEqual(parsed('80 ffffffff 35 00000000 35 00000001 00'), { TTY_OP_ISPEED: 0xffffffff, ECHO: 1 });
  });

  it('returns a null-prototype object that no key can pollute', () => {
    const modes = parseTerminalModes(Buffer.from('3500000001' + '00', 'hex'));
    assert.equal(Object.getPrototypeOf(modes), null);
    assert.equal('toString' in modes, false);
    assert.equal('__proto__' in modes, false);
    assert.throws(() => encodeTerminalModes(JSON.parse('{"__proto__": 1}') as Record<string, number>), RangeError);
  });

  it('never throws on arbitrary bytes', () => {
    for (let i = 0; i < 200; i++) parseTerminalModes(randomBytes(i));
  });
});

describe('encodeTerminalModes', () => {
  it('writes opcode/uint32 pairs in key order and ends with 0', () => {
    assert.equal(
      encodeTerminalModes({ VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 }).toString('hex'),
      '01000000033500000001800000960000',
    );
    assert.equal(encodeTerminalModes({}).toString('hex'), '00');
  });

  it('round-trips every named mode', () => {
    const modes: Record<string, number> = {};
    for (const [opcode, name] of Object.entries(TERMINAL_MODE_NAMES)) modes[name] = Number(opcode) * 1000;
    assert.deepEqual(parsed(encodeTerminalModes(modes)), modes);
  });

  it('rejects unknown names and out-of-range values', () => {
    assert.throws(() => encodeTerminalModes({ NOPE: 1 }), RangeError);
    assert.throws(() => encodeTerminalModes({ ECHO: -1 }), RangeError);
    assert.throws(() => encodeTerminalModes({ ECHO: 2 ** 32 }), RangeError);
    assert.throws(() => encodeTerminalModes({ ECHO: 1.5 }), RangeError);
    assert.throws(() => encodeTerminalModes({ ECHO: Number.NaN }), RangeError);
  });
});

/** The obvious byte-by-byte conversion, to compare against. */
function referenceCrlf(chunks: Buffer[]): Buffer {
  const out: number[] = [];
  let prev = -1;
  for (const chunk of chunks) {
    for (const byte of chunk) {
      if (byte === 0x0a && prev !== 0x0d) out.push(0x0d);
      out.push(byte);
      prev = byte;
    }
  }
  return Buffer.from(out);
}

function encodeAll(chunks: string[]): string {
  const crlf = new CrlfEncoder();
  return chunks.map((c) => crlf.encode(Buffer.from(c, 'latin1')).toString('latin1')).join('');
}

// Every encoder test runs twice: with the WebAssembly kernel and with the JavaScript path.
for (const path of ['WebAssembly kernel', 'JavaScript'] as const) {
  describe(`CrlfEncoder with the ${path} path`, () => {
    before(() => useCrlfKernel(path === 'WebAssembly kernel'));
    after(() => useCrlfKernel(true));

  describe(`CrlfEncoder (${path})`, () => {
    it('turns \\n into \\r\\n', () => {
      assert.equal(encodeAll(['a\nb']), 'a\r\nb');
      assert.equal(encodeAll(['\n']), '\r\n');
      assert.equal(encodeAll(['\na\n']), '\r\na\r\n');
    });

    it('leaves \\r\\n and lone \\r alone', () => {
      assert.equal(encodeAll(['a\r\nb']), 'a\r\nb');
      assert.equal(encodeAll(['a\rb\r']), 'a\rb\r');
      assert.equal(encodeAll(['\r\n\r\n']), '\r\n\r\n');
    });

    it('remembers a \\r that ended the previous chunk', () => {
      assert.equal(encodeAll(['a\r', '\nb']), 'a\r\nb');
      assert.equal(encodeAll(['a\r', '', '\nb']), 'a\r\nb'); // an empty chunk in between changes nothing
      assert.equal(encodeAll(['a\rx', '\nb']), 'a\rx\r\nb');
      assert.equal(encodeAll(['a\n', '\nb']), 'a\r\n\r\nb');
    });

    it('converts consecutive newlines', () => {
      assert.equal(encodeAll(['\n\n']), '\r\n\r\n');
      assert.equal(encodeAll(['a\n\n\nb']), 'a\r\n\r\n\r\nb');
      assert.equal(encodeAll(['\r\n\n']), '\r\n\r\n');
    });

    it('returns the same Buffer when there is nothing to convert', () => {
      const crlf = new CrlfEncoder();
      const plain = Buffer.from('no newline here');
      assert.equal(crlf.encode(plain), plain);
      const already = Buffer.from('one\r\ntwo\r\n');
      assert.equal(crlf.encode(already), already);
      assert.equal(crlf.encode(Buffer.from('x\r')).toString(), 'x\r');
      const continued = Buffer.from('\ny');
      assert.equal(crlf.encode(continued), continued);
    });

    it('handles an empty chunk', () => {
      const crlf = new CrlfEncoder();
      const empty = Buffer.alloc(0);
      assert.equal(crlf.encode(empty), empty);
    });

    it('does not modify its input', () => {
      const input = Buffer.from('a\nb');
      new CrlfEncoder().encode(input);
      assert.equal(input.toString(), 'a\nb');
    });

    it('matches a reference implementation on 1 MiB of random data in random chunks', () => {
      const data = randomBytes(1024 * 1024);
      // Make newlines and carriage returns frequent, including \r\n pairs and runs.
      for (let i = 0; i < data.length; i++) {
        const b = data[i] as number;
        if (b < 40) data[i] = 0x0a;
        else if (b < 60) data[i] = 0x0d;
      }
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < data.length; ) {
        const size = Math.min(data.length - pos, Math.floor(Math.random() * 4096));
        chunks.push(data.subarray(pos, pos + size));
        pos += size;
      }
      const crlf = new CrlfEncoder();
      const actual = Buffer.concat(chunks.map((chunk) => crlf.encode(chunk)));
      assert.ok(actual.equals(referenceCrlf(chunks)));
    });
  });

  describe(`CrlfEncoder on dense terminal output (${path})`, () => {
    it('matches the reference for short lines without \\r, across chunk boundaries, also after a chunk ending in \\r', () => {
      const lines = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}\u00ff\n`).join(''), 'latin1');
      const chunks: Buffer[] = [];
      for (let p = 0; p < lines.length; p += 4093) chunks.push(lines.subarray(p, p + 4093));
      chunks.splice(3, 0, Buffer.from('tail\r'), Buffer.from('\nnext\nline\n'.repeat(40)));
      const enc = new CrlfEncoder();
      const out = Buffer.concat(chunks.map((c) => enc.encode(c)));
      assert.ok(out.equals(referenceCrlf(chunks)));
      assert.doesNotMatch(out.toString('latin1'), /[^\r]\n/);
      assert.ok(out.includes(Buffer.from('tail\r\nnext\r\n')), 'a \\n right after a chunk ending in \\r stays single');
    });
  });

    it('converts chunks larger than one kernel call (64 KiB), with a \\r\\n split across the boundary', () => {
      const size = KERNEL_MAX_INPUT * 2 + 1000;
      const data = Buffer.alloc(size, 0x61);
      for (let i = 79; i < size; i += 80) data[i] = 0x0a;
      data[KERNEL_MAX_INPUT - 1] = 0x0d; // \r at the end of the first 64 KiB ...
      data[KERNEL_MAX_INPUT] = 0x0a; // ... \n at the start of the second: stays \r\n
      const out = new CrlfEncoder().encode(data);
      assert.ok(out.equals(referenceCrlf([data])));
    });
  });
}

describe('the WebAssembly kernel', () => {
  it('is what src/internal/crlf.wat assembles to (npm run build:wasm)', () => {
    const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('compiles on this Node (SIMD) and is used by default', () => {
    assert.ok(crlfKernel(), 'WebAssembly SIMD is available in Node >= 16.4; without it pty output is 4x slower');
  });

  it('encode() never returns a view of the kernel memory; encodeTransient() does, valid until the next call', () => {
    const kernel = crlfKernel()!;
    const enc = new CrlfEncoder();
    const owned = enc.encode(Buffer.from('a\nb\n'));
    assert.notEqual(owned.buffer, kernel.memory);
    const view = enc.encodeTransient(Buffer.from('c\nd\n'));
    assert.equal(view.buffer, kernel.memory);
    assert.equal(view.toString(), 'c\r\nd\r\n');
    new CrlfEncoder().encodeTransient(Buffer.from('XXXXXXXX\n'));
    assert.notEqual(view.toString(), 'c\r\nd\r\n', 'the view is overwritten by the next conversion');
    assert.equal(owned.toString(), 'a\r\nb\r\n');
  });

  it('matches the reference on every length 0-300 around a 16-byte block, with \\r and \\n at every position', () => {
    const enc = (prev: number, chunk: Buffer): Buffer => {
      const e = new CrlfEncoder();
      if (prev === 0x0d) e.encode(Buffer.from('\r'));
      return e.encode(chunk);
    };
    for (let len = 0; len <= 300; len++) {
      for (const fill of [0x0a, 0x0d, 0x61]) {
        for (const prev of [0x0d, 0x61]) {
          const data = Buffer.alloc(len, 0x61);
          for (let i = 0; i < len; i += 1 + (len % 5)) data[i] = fill;
          if (len > 2) data[len - 1] = 0x0a;
          const expected = referenceCrlf(prev === 0x0d ? [Buffer.from('\r'), data] : [data]).subarray(prev === 0x0d ? 1 : 0);
          assert.ok(enc(prev, data).equals(expected), `length ${len}, fill ${fill}, prev ${prev}`);
        }
      }
    }
  });
});
