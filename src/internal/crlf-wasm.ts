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
const OUT = 131072;
/** The largest input one call converts. */
export const KERNEL_MAX_INPUT = 65536;

/** One compiled kernel; its memory is shared by every caller (calls are synchronous). */
export interface CrlfKernel {
  /**
   * Converts `chunk` (at most {@link KERNEL_MAX_INPUT} bytes); `prev` is the byte that came
   * before it. Returns a view of the kernel's memory, valid until the next call.
   */
  convert(chunk: Uint8Array, prev: number): Buffer;
  /** The kernel's memory, to tell its views from other buffers. */
  readonly memory: ArrayBuffer;
}

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
    const bytes = new Uint8Array(memory.buffer);
    kernel = {
      memory: memory.buffer,
      convert(chunk, prev) {
        bytes[IN - 1] = prev;
        bytes.set(chunk, IN);
        return Buffer.from(memory.buffer, OUT, crlf(chunk.length));
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
