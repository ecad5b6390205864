/**
 * Pseudo-terminal helpers: the RFC 4254 §8 terminal-mode table, a decoder and encoder for
 * the `pty-req` "encoded terminal modes" string, and a `\n` → `\r\n` output encoder for
 * sessions that have a pty.
 *
 * glidessh decodes terminal modes itself because ssh2 1.17 gets them wrong: it starts reading
 * at offset 1 and looks opcodes up in an inverted table.
 *
 * @module
 */
import { crlfKernel, KERNEL_MAX_INPUT, KERNEL_MAX_PREFIX, type CrlfKernel } from './internal/crlf-wasm.js';
import type { WireReader } from './internal/wire.js';
import type { Pty, Window } from './types.js';

/**
 * Terminal-mode names by opcode: every opcode RFC 4254 §8 defines (`VINTR` = 1 …
 * `TTY_OP_OSPEED` = 129) plus `IUTF8` = 42 from RFC 8160.
 *
 * `TTY_OP_END` (0), which ends the list rather than naming a mode, is not in the table. The
 * object is frozen and has no prototype, so only real opcodes map to a name.
 *
 * @example
 * ```ts
 * TERMINAL_MODE_NAMES[53]; // "ECHO"
 * TERMINAL_MODE_NAMES[128]; // "TTY_OP_ISPEED"
 * TERMINAL_MODE_NAMES[19]; // undefined
 * ```
 * @see RFC 4254 §8, RFC 8160 §2
 */
export const TERMINAL_MODE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.assign(Object.create(null) as Record<number, string>, {
    1: 'VINTR',
    2: 'VQUIT',
    3: 'VERASE',
    4: 'VKILL',
    5: 'VEOF',
    6: 'VEOL',
    7: 'VEOL2',
    8: 'VSTART',
    9: 'VSTOP',
    10: 'VSUSP',
    11: 'VDSUSP',
    12: 'VREPRINT',
    13: 'VWERASE',
    14: 'VLNEXT',
    15: 'VFLUSH',
    16: 'VSWTCH',
    17: 'VSTATUS',
    18: 'VDISCARD',
    30: 'IGNPAR',
    31: 'PARMRK',
    32: 'INPCK',
    33: 'ISTRIP',
    34: 'INLCR',
    35: 'IGNCR',
    36: 'ICRNL',
    37: 'IUCLC',
    38: 'IXON',
    39: 'IXANY',
    40: 'IXOFF',
    41: 'IMAXBEL',
    42: 'IUTF8',
    50: 'ISIG',
    51: 'ICANON',
    52: 'XCASE',
    53: 'ECHO',
    54: 'ECHOE',
    55: 'ECHOK',
    56: 'ECHONL',
    57: 'NOFLSH',
    58: 'TOSTOP',
    59: 'IEXTEN',
    60: 'ECHOCTL',
    61: 'ECHOKE',
    62: 'PENDIN',
    70: 'OPOST',
    71: 'OLCUC',
    72: 'ONLCR',
    73: 'OCRNL',
    74: 'ONOCR',
    75: 'ONLRET',
    90: 'CS7',
    91: 'CS8',
    92: 'PARENB',
    93: 'PARODD',
    128: 'TTY_OP_ISPEED',
    129: 'TTY_OP_OSPEED',
  }),
);

/** Opcode by mode name: the inverse of {@link TERMINAL_MODE_NAMES}. */
const OPCODES: ReadonlyMap<string, number> = new Map(
  Object.entries(TERMINAL_MODE_NAMES).map(([opcode, name]) => [name, Number(opcode)]),
);

/** `TTY_OP_END`: ends the encoded modes. */
const TTY_OP_END = 0;
/** Opcodes from here to 255 are undefined and stop parsing (RFC 4254 §8). */
const FIRST_UNDEFINED_OPCODE = 160;
/** One mode on the wire: an opcode byte and a uint32 argument. */
const MODE_SIZE = 5;

/**
 * Decodes the "encoded terminal modes" string of a `pty-req` into modes by name.
 *
 * The string is a sequence of (byte opcode, uint32 value) pairs. Parsing stops at
 * `TTY_OP_END` (0), at an opcode of 160–255 (RFC 4254 §8: undefined, "cause parsing to stop"),
 * or at a truncated pair, keeping what was decoded before. An opcode of 1–159 without a name
 * in {@link TERMINAL_MODE_NAMES} is skipped together with its value. A mode that appears twice
 * keeps its last value. Never throws.
 *
 * The result has a `null` prototype, so it carries no inherited keys (`'toString' in modes` is
 * `false`); spread it (`{ ...modes }`) to get a plain object, e.g. for `assert.deepStrictEqual`.
 *
 * @param encoded - The raw `string` field of the request, without its length prefix.
 * @returns Mode values by name, e.g. `{ VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 }`.
 *
 * @example
 * ```ts
 * parseTerminalModes(Buffer.from('01000000033500000001800000960000', 'hex'));
 * // { VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 }
 * ```
 * @see RFC 4254 §6.2 and §8, RFC 8160
 */
export function parseTerminalModes(encoded: Buffer): Record<string, number> {
  const modes = Object.create(null) as Record<string, number>;
  for (let pos = 0; pos + MODE_SIZE <= encoded.length; pos += MODE_SIZE) {
    const opcode = encoded[pos] as number;
    if (opcode === TTY_OP_END || opcode >= FIRST_UNDEFINED_OPCODE) break;
    const name = TERMINAL_MODE_NAMES[opcode];
    if (name !== undefined) modes[name] = encoded.readUInt32BE(pos + 1);
  }
  return modes;
}

/**
 * Encodes terminal modes by name into the "encoded terminal modes" string of a `pty-req`: the
 * inverse of {@link parseTerminalModes}. Pairs are written in the object's key order and the
 * result ends with `TTY_OP_END` (0); `{}` encodes to the single byte `00`.
 *
 * @param modes - Mode values by their {@link TERMINAL_MODE_NAMES} name.
 * @returns The encoded string, without a length prefix.
 * @throws RangeError if a name is not in {@link TERMINAL_MODE_NAMES} or a value is not an
 *   integer from 0 to 2³²−1.
 *
 * @example
 * ```ts
 * encodeTerminalModes({ VINTR: 3, ECHO: 1 }).toString('hex');
 * // "0100000003350000000100"
 * ```
 * @see RFC 4254 §6.2 and §8
 */
export function encodeTerminalModes(modes: Record<string, number>): Buffer {
  const entries = Object.entries(modes);
  const out = Buffer.allocUnsafe(entries.length * MODE_SIZE + 1);
  let pos = 0;
  for (const [name, value] of entries) {
    const opcode = OPCODES.get(name);
    if (opcode === undefined) throw new RangeError(`Unknown terminal mode "${name}"`);
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`Terminal mode ${name} must be an integer from 0 to 4294967295, got ${value}`);
    }
    out[pos] = opcode;
    out.writeUInt32BE(value, pos + 1);
    pos += MODE_SIZE;
  }
  out[pos] = TTY_OP_END;
  return out;
}

/** @internal Reads the window of a `window-change` request (RFC 4254 §6.7); undefined when truncated. */
export function readWindow(r: WireReader): Window | undefined {
  const width = r.uint32();
  const height = r.uint32();
  const widthPixels = r.uint32();
  const heightPixels = r.uint32();
  if (heightPixels === undefined) return undefined;
  return { width: width!, height: height!, widthPixels: widthPixels!, heightPixels };
}

/** @internal Reads a `pty-req` (RFC 4254 §6.2) with its terminal modes; undefined when truncated. */
export function readPtyRequest(r: WireReader): Pty | undefined {
  const term = r.string();
  const window = readWindow(r);
  const modes = r.bytes();
  if (modes === undefined || !window) return undefined;
  return { term: term!, window, modes: parseTerminalModes(modes) };
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Turns `\n` into `\r\n` in output written to a pty session, as a terminal with `ONLCR` set
 * does ("cooked" output), so that text written with bare newlines starts each line at the
 * left margin.
 *
 * A `\n` that already follows a `\r` is left alone, also when that `\r` was the last byte of
 * the previous chunk; a lone `\r` is left alone too. Use one encoder per output stream.
 *
 * A chunk with nothing to convert is returned as is (the same `Buffer`, not a copy);
 * otherwise the result is a new `Buffer`. The conversion runs in a WebAssembly SIMD kernel
 * where available (16 bytes per step), else in JavaScript.
 *
 * @example
 * ```ts
 * const crlf = new CrlfEncoder();
 * channel.write(crlf.encode(Buffer.from('one\ntwo\r')));  // "one\r\ntwo\r"
 * channel.write(crlf.encode(Buffer.from('\nthree\n'))); // "\nthree\r\n"
 * ```
 * @see RFC 4254 §8 (`ONLCR`, opcode 72)
 */
export class CrlfEncoder {
  /** Whether the last byte of the last non-empty chunk was `\r`. */
  private afterCr = false;

  /**
   * Converts one chunk of output.
   *
   * @param chunk - The bytes to write; not modified.
   * @returns `chunk` itself when it has no `\n` to convert, else a new `Buffer`.
   */
  encode(chunk: Buffer): Buffer {
    const out = this.encodeTransient(chunk);
    return out === chunk || out.buffer !== crlfKernel()?.memory ? out : Buffer.from(out);
  }

  /**
   * @internal Like {@link CrlfEncoder.encode}, but the result may be a view of the kernel's
   * memory, valid only until the next conversion by any encoder: for a caller that copies it
   * at once (ssh2 copies channel data into the packet) and copies what it keeps. With a
   * `prefix` (output held back from earlier, sent unchanged), the result starts with it.
   */
  encodeTransient(chunk: Buffer, prefix?: Buffer): Buffer {
    const length = chunk.length;
    const kernel = crlfKernel();
    if (prefix?.length) {
      if (!kernel || length > KERNEL_MAX_INPUT || prefix.length > KERNEL_MAX_PREFIX) return Buffer.concat([prefix, this.encodeTransient(chunk)]);
      const out = kernel.convert(chunk, this.afterCr ? CR : 0, prefix);
      if (length > 0) this.afterCr = chunk[length - 1] === CR;
      return out;
    }
    if (length === 0) return chunk;
    if (kernel) {
      if (chunk.indexOf(LF) === -1) {
        this.afterCr = chunk[length - 1] === CR;
        return chunk;
      }
      if (length > KERNEL_MAX_INPUT) {
        const parts: Buffer[] = [];
        for (let p = 0; p < length; p += KERNEL_MAX_INPUT) parts.push(this.encode(chunk.subarray(p, p + KERNEL_MAX_INPUT)));
        return Buffer.concat(parts);
      }
      const out = kernel.convert(chunk, this.afterCr ? CR : 0);
      this.afterCr = chunk[length - 1] === CR;
      return out.length === length ? chunk : out;
    }
    return this.encodeJs(chunk);
  }

  /**
   * @internal Converts `chunk` (at most {@link KERNEL_MAX_INPUT} bytes) into the kernel's
   * memory at `KERNEL_OUT` and returns the output's length (see `CrlfKernel.convertRaw`).
   */
  convertRaw(kernel: CrlfKernel, chunk: Buffer): number {
    const n = kernel.convertRaw(chunk, this.afterCr ? CR : 0);
    if (chunk.length > 0) this.afterCr = chunk[chunk.length - 1] === CR;
    return n;
  }

  /** The conversion without the kernel. */
  private encodeJs(chunk: Buffer): Buffer {
    const length = chunk.length;
    let bare = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
      if (!this.followsCr(chunk, lf)) bare++;
    }
    if (bare === 0) {
      this.afterCr = chunk[length - 1] === CR;
      return chunk;
    }

    // Dense short lines (terminal output) go faster through one latin1 string replace (byte
    // exact: latin1 maps each byte to one code unit and back) than a copy per line; it applies
    // when no `\r` needs looking at.
    if (bare * 256 > length && chunk.indexOf(CR) === -1 && !(this.afterCr && chunk[0] === LF)) {
      this.afterCr = false;
      return Buffer.from(chunk.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
    }

    const out = Buffer.allocUnsafe(length + bare);
    let from = 0;
    let to = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
      if (this.followsCr(chunk, lf)) continue;
      to += chunk.copy(out, to, from, lf);
      out[to++] = CR;
      from = lf; // the `\n` itself starts the next run
    }
    chunk.copy(out, to, from, length);
    this.afterCr = chunk[length - 1] === CR;
    return out;
  }

  /** Whether the `\n` at `lf` comes right after a `\r`, counting the previous chunk's last byte. */
  private followsCr(chunk: Buffer, lf: number): boolean {
    return lf === 0 ? this.afterCr : chunk[lf - 1] === CR;
  }
}
