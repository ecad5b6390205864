;; The `\n` -> `\r\n` kernel behind glidessh's pty output (src/internal/crlf-wasm.ts).
;; Source of src/internal/crlf-wasm.ts: `npm run build:wasm` assembles this file with wabt;
;; test/unit/crlf-wasm.test.ts fails when the two differ.
;;
;; Memory: input at IN = 16 (at most 65536 bytes), the byte before the input at IN - 1,
;; output at OUT = 131072 (at most 131072 bytes, plus 16 bytes of scratch past the end).
;; crlf(len) writes the input with a `\r` put before every `\n` that does not follow a `\r`,
;; and returns the output's length.
;;
;; 16 bytes at a time: each block is copied whole; for each `\n` in it that needs a `\r`,
;; the `\r` goes in and the rest of the block is copied again one byte further on.
(module
  (memory (export "memory") 5)
  (func (export "crlf") (param $len i32) (result i32)
    (local $i i32) (local $o i32) (local $end i32) (local $m i32) (local $k i32) (local $b i32)
    (local $nl v128) (local $v v128)
    (local.set $i (i32.const 16))
    (local.set $end (i32.add (local.get $len) (i32.const 16)))
    (local.set $o (i32.const 131072))
    (local.set $nl (i8x16.splat (i32.const 10)))
    (block $tail
      (loop $block
        (br_if $tail (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $end)))
        (local.set $v (v128.load (local.get $i)))
        (v128.store (local.get $o) (local.get $v))
        (local.set $m (i8x16.bitmask (i8x16.eq (local.get $v) (local.get $nl))))
        (block $done
          (loop $bits
            (br_if $done (i32.eqz (local.get $m)))
            ;; $k: input offset of the lowest `\n` left in the block; then clear its bit
            (local.set $k (i32.add (local.get $i) (i32.ctz (local.get $m))))
            (local.set $m (i32.and (local.get $m) (i32.sub (local.get $m) (i32.const 1))))
            (if (i32.ne (i32.load8_u (i32.sub (local.get $k) (i32.const 1))) (i32.const 13))
              (then
                (local.set $b (i32.add (local.get $o) (i32.sub (local.get $k) (local.get $i))))
                (i32.store8 (local.get $b) (i32.const 13))
                (v128.store (i32.add (local.get $b) (i32.const 1)) (v128.load (local.get $k)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))))
            (br $bits)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $block)))
    ;; the last 0-15 bytes, one at a time
    (block $out
      (loop $byte
        (br_if $out (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $i)))
        (if (i32.and
              (i32.eq (local.get $b) (i32.const 10))
              (i32.ne (i32.load8_u (i32.sub (local.get $i) (i32.const 1))) (i32.const 13)))
          (then
            (i32.store8 (local.get $o) (i32.const 13))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))))
        (i32.store8 (local.get $o) (local.get $b))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (i32.sub (local.get $o) (i32.const 131072))))
