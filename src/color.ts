/**
 * {@link colorLevel}: how many colors a client's terminal shows, from what the client sent.
 *
 * @module
 */

/**
 * How many colors a terminal shows, as chalk and supports-color count them: `0` none, `1` the
 * 16 basic colors, `2` 256 colors, `3` 24-bit "truecolor".
 */
export type ColorLevel = 0 | 1 | 2 | 3;

/** @internal Color depth in bits per level, as `tty.WriteStream.getColorDepth()` returns it. */
export const DEPTH: Readonly<Record<ColorLevel, number>> = { 0: 1, 1: 4, 2: 8, 3: 24 };
/** Terminal families that show at least the 16 basic colors. */
const COLOR_TERMS = /^(xterm|screen|tmux|vt100|vt220|rxvt|color|ansi|cygwin|linux|konsole|putty|eterm|kterm|gnome|st-|alacritty|foot|wezterm)/i;
/** Terminals known to show 24-bit color from their TERM alone. */
const TRUECOLOR_TERMS = /(-direct$|^xterm-kitty$|^xterm-ghostty$|^alacritty|^wezterm|^foot)/i;

/**
 * The color level of a client's terminal, from its `TERM` (sent with the pty request) and the
 * environment it sent (`COLORTERM`, `NO_COLOR`, `FORCE_COLOR`; OpenSSH sends them with
 * `-o SetEnv=COLORTERM=truecolor` or `SendEnv`). The server's own environment plays no part.
 *
 * Rules, first match wins: `FORCE_COLOR` (`0`/`false` → 0, `1`/`true`/empty → 1, `2`, `3`);
 * `NO_COLOR` set and not empty → 0; no `TERM` or `TERM=dumb` → 0; `COLORTERM=truecolor` or
 * `24bit` → 3; a truecolor `TERM` (`*-direct`, kitty, ghostty, alacritty, wezterm, foot) → 3;
 * `TERM` ending in `256color` → 2; a known color `TERM` (xterm, screen, tmux, linux, …) or any
 * `COLORTERM` → 1; else 0.
 *
 * @example
 * ```ts
 * colorLevel('xterm-256color', {});                       // 2
 * colorLevel('xterm-256color', { COLORTERM: 'truecolor' }); // 3
 * colorLevel('dumb', { COLORTERM: 'truecolor' });         // 0
 * ```
 */
export function colorLevel(term: string | undefined, env: Readonly<Record<string, string | undefined>> = {}): ColorLevel {
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    if (force === '2') return 2;
    if (force === '3') return 3;
    return 1;
  }
  if (env.NO_COLOR) return 0;
  if (!term || term === 'dumb') return 0;
  const colorterm = env.COLORTERM;
  if (colorterm === 'truecolor' || colorterm === '24bit') return 3;
  if (TRUECOLOR_TERMS.test(term)) return 3;
  if (/256colou?r$/i.test(term)) return 2;
  if (COLOR_TERMS.test(term) || colorterm) return 1;
  return 0;
}
