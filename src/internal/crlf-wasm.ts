/**
 * The `\n`→`\r\n` conversion of pty output as a WebAssembly SIMD kernel (src/internal/crlf.wat):
 * 16 bytes per step, about 3 µs per 64 KiB where the best JavaScript (a copy per line) takes
 * 30–60 µs. {@link CrlfEncoder} falls back to JavaScript when the kernel cannot be compiled
 * (no WebAssembly, or no SIMD).
 *
 * @module
 */
import { CRLF_WASM } from './crlf-wasm-binary.js';

/** Where crlf.wat reads its input (the byte before it is at `IN - 1`) and writes its output. */
const IN = 16;
const OUT = 131072; // KERNEL_OUT
/** The largest input one call converts. */
export const KERNEL_MAX_INPUT = 65536;
/** The largest prefix one call puts before its output (the room between input and output). */
export const KERNEL_MAX_PREFIX = OUT - IN - KERNEL_MAX_INPUT;

/** One compiled kernel; its memory is shared by every caller (calls are synchronous). */
export interface CrlfKernel {
  /**
   * Converts `chunk` (at most {@link KERNEL_MAX_INPUT} bytes); `prev` is the byte that came
   * before it. Returns a view of the kernel's memory, valid until the next call, that starts
   * with `prefix` (at most {@link KERNEL_MAX_PREFIX} bytes, copied as is) when one is given.
   */
  convert(chunk: Uint8Array, prev: number, prefix?: Uint8Array): Buffer;
  /**
   * Like `convert` without making a view: the output is `bytes[KERNEL_OUT, KERNEL_OUT + n)`
   * for the returned `n`; a caller may put a prefix right before `KERNEL_OUT`.
   */
  convertRaw(chunk: Uint8Array, prev: number): number;
  /** The kernel's memory as one Buffer. */
  readonly bytes: Buffer;
  /** The kernel's memory, to tell its views from other buffers. */
  readonly memory: ArrayBuffer;
}

/** Where {@link CrlfKernel.convertRaw} puts its output in `bytes`. */
export const KERNEL_OUT = 131072;

interface Exports {
  crlf(len: number): number;
  memory: { buffer: ArrayBuffer };
}

let kernel: CrlfKernel | null | undefined;
let enabled = true;

/** The kernel, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function crlfKernel(): CrlfKernel | null {
  if (!enabled) return null;
  if (kernel !== undefined) return kernel;
  kernel = null;
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (!wasm) return null;
    const instance = new wasm.Instance(new wasm.Module(Buffer.from(CRLF_WASM, 'base64')));
    const { crlf, memory } = instance.exports as Exports;
    // One Buffer over the whole memory; results are subarrays of it (constructing a Buffer on
    // a WebAssembly memory each time costs more than the conversion itself).
    const bytes = Buffer.from(memory.buffer);
    const convertRaw = (chunk: Uint8Array, prev: number): number => {
      bytes[IN - 1] = prev;
      bytes.set(chunk, IN);
      return crlf(chunk.length);
    };
    kernel = {
      memory: memory.buffer,
      bytes,
      convertRaw,
      convert(chunk, prev, prefix) {
        const n = convertRaw(chunk, prev);
        if (!prefix?.length) return bytes.subarray(OUT, OUT + n);
        bytes.set(prefix, OUT - prefix.length);
        return bytes.subarray(OUT - prefix.length, OUT + n);
      },
    };
  } catch {
    // No SIMD (or WebAssembly switched off): the JavaScript path does the work.
  }
  return kernel;
}

/** @internal For tests: switches the kernel off (or on again) to exercise both paths. */
export function useCrlfKernel(on: boolean): void {
  enabled = on;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
