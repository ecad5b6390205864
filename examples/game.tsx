/**
 * 2048 over SSH, drawn with Ink: one game per user, each in its own window size and colors.
 *
 *   npx tsx examples/game.tsx
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null localhost
 *
 * Arrows (or hjkl / wasd) slide the tiles, r restarts, q or Ctrl-C quits. GAME_SEED=<n> makes
 * the tiles repeatable.
 */
import { useEffect, useState } from 'react';
import { pathToFileURL } from 'node:url';
import { Server, activeTerm, logging, type ColorLevel, type Handler, type TerminalOutput } from '../src/index.js';
import { inkHandler, loadInk } from '../src/ink.js';

// Through loadInk() rather than `import … from 'ink'`: it keeps Ink live even if the server
// runs with CI=true (Ink < 7 reads CI once, when first imported).
const { Box, Text, useApp, useInput } = await loadInk();

export type Board = number[][];
export type Direction = 'left' | 'right' | 'up' | 'down';

/** A small seeded PRNG (mulberry32), so that GAME_SEED replays the same tiles. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Puts a 2 (or, one time in ten, a 4) on a random empty cell. */
export function addTile(board: Board, rand: () => number): Board {
  const empty: Array<[number, number]> = [];
  board.forEach((row, r) => row.forEach((v, c) => v === 0 && empty.push([r, c])));
  if (empty.length === 0) return board;
  const [r, c] = empty[Math.floor(rand() * empty.length)]!;
  const next = board.map((row) => [...row]);
  next[r]![c] = rand() < 0.9 ? 2 : 4;
  return next;
}

/** Slides one row to the left, merging equal neighbours once. */
function slideRow(row: number[]): { row: number[]; gained: number } {
  const tiles = row.filter((v) => v !== 0);
  const out: number[] = [];
  let gained = 0;
  for (let i = 0; i < tiles.length; i++) {
    if (tiles[i] === tiles[i + 1]) {
      out.push(tiles[i]! * 2);
      gained += tiles[i]! * 2;
      i++;
    } else out.push(tiles[i]!);
  }
  while (out.length < row.length) out.push(0);
  return { row: out, gained };
}

const transpose = (b: Board): Board => b[0]!.map((_, c) => b.map((row) => row[c]!));
const mirror = (b: Board): Board => b.map((row) => [...row].reverse());

/** Slides the whole board; `moved` is false when nothing changed. */
export function slide(board: Board, dir: Direction): { board: Board; gained: number; moved: boolean } {
  const pre = dir === 'left' ? board : dir === 'right' ? mirror(board) : dir === 'up' ? transpose(board) : mirror(transpose(board));
  let gained = 0;
  const slid = pre.map((row) => {
    const r = slideRow(row);
    gained += r.gained;
    return r.row;
  });
  const post = dir === 'left' ? slid : dir === 'right' ? mirror(slid) : dir === 'up' ? transpose(slid) : transpose(mirror(slid));
  return { board: post, gained, moved: JSON.stringify(post) !== JSON.stringify(board) };
}

export const canMove = (b: Board): boolean => (['left', 'right', 'up', 'down'] as const).some((d) => slide(b, d).moved);

/** Tile colors as [background, foreground] RGB. */
const PALETTE: Record<number, [[number, number, number], [number, number, number]]> = {
  2: [[238, 228, 218], [119, 110, 101]],
  4: [[237, 224, 200], [119, 110, 101]],
  8: [[242, 177, 121], [249, 246, 242]],
  16: [[245, 149, 99], [249, 246, 242]],
  32: [[246, 124, 95], [249, 246, 242]],
  64: [[246, 94, 59], [249, 246, 242]],
  128: [[237, 207, 114], [249, 246, 242]],
  256: [[237, 204, 97], [249, 246, 242]],
  512: [[237, 200, 80], [249, 246, 242]],
  1024: [[237, 197, 63], [249, 246, 242]],
  2048: [[237, 194, 46], [249, 246, 242]],
};
/** The 16-color fallback: background SGR codes. */
const BASIC: Record<number, number> = { 2: 47, 4: 47, 8: 43, 16: 43, 32: 41, 64: 41, 128: 103, 256: 103, 512: 103, 1024: 102, 2048: 102 };

const rgb256 = ([r, g, b]: [number, number, number]): number =>
  16 + 36 * Math.round((r / 255) * 5) + 6 * Math.round((g / 255) * 5) + Math.round((b / 255) * 5);

/** One tile, 6 columns wide, colored for this player's terminal (not the server's). */
export function paintTile(value: number, level: ColorLevel): string {
  const text = value === 0 ? '·' : String(value);
  const left = Math.floor((6 - text.length) / 2);
  const cell = ' '.repeat(left) + text + ' '.repeat(6 - text.length - left);
  const colors = PALETTE[Math.min(value, 2048)];
  if (value === 0 || !colors || level === 0) return cell;
  const [bg, fg] = colors;
  if (level === 3) return `\x1b[48;2;${bg.join(';')}m\x1b[38;2;${fg.join(';')}m${cell}\x1b[0m`;
  if (level === 2) return `\x1b[48;5;${rgb256(bg)}m\x1b[38;5;${rgb256(fg)}m${cell}\x1b[0m`;
  return `\x1b[${BASIC[Math.min(value, 2048)] ?? 47};30m${cell}\x1b[0m`;
}

const LEVEL_NAMES = ['no colors', '16 colors', '256 colors', 'truecolor'] as const;

function newBoard(rand: () => number): Board {
  return addTile(addTile([0, 1, 2, 3].map(() => [0, 0, 0, 0]), rand), rand);
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The size of this player's window, kept current from the terminal's 'resize' events. */
function useSize(stdout: TerminalOutput): [number, number] {
  const [size, setSize] = useState<[number, number]>([stdout.columns, stdout.rows]);
  useEffect(() => {
    const onResize = (): void => setSize([stdout.columns, stdout.rows]);
    stdout.on('resize', onResize);
    return () => void stdout.off('resize', onResize);
  }, [stdout]);
  return size;
}

export interface GameProps {
  user: string;
  stdout: TerminalOutput;
  colorLevel: ColorLevel;
  seed: number;
}

/** The game: board, score, moves, a running clock, this player's window size and colors. */
export function Game({ user, stdout, colorLevel, seed }: GameProps) {
  const { exit } = useApp();
  const [rand] = useState(() => random(seed));
  const [board, setBoard] = useState<Board>(() => newBoard(rand));
  const [score, setScore] = useState(0);
  const [moves, setMoves] = useState(0);
  const [started, setStarted] = useState(() => Date.now());
  const [now, setNow] = useState(() => Date.now());
  const [columns, rows] = useSize(stdout);

  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  useInput((input, key) => {
    if (input === 'q') return exit();
    if (input === 'r') {
      setBoard(newBoard(rand));
      setScore(0);
      setMoves(0);
      setStarted(Date.now());
      return;
    }
    const dir: Direction | undefined =
      key.leftArrow || input === 'h' || input === 'a' ? 'left'
      : key.rightArrow || input === 'l' || input === 'd' ? 'right'
      : key.upArrow || input === 'k' || input === 'w' ? 'up'
      : key.downArrow || input === 'j' || input === 's' ? 'down'
      : undefined;
    if (!dir) return;
    const result = slide(board, dir);
    if (!result.moved) return;
    setBoard(addTile(result.board, rand));
    setScore((s) => s + result.gained);
    setMoves((m) => m + 1);
  });

  if (columns < 34 || rows < 14) {
    return <Text>Too small: {columns}x{rows} (need 34x14)</Text>;
  }
  const won = board.some((row) => row.includes(2048));
  const over = !canMove(board);
  return (
    <Box flexDirection="column">
      <Box borderStyle="round" flexDirection="column" paddingX={1} width={33}>
        <Text bold>
          2048 score {score} moves {moves} {clock(now - started)}
        </Text>
        {board.map((row, r) => (
          <Box key={r} flexDirection="column">
            <Text> </Text>
            <Text>{row.map((v) => paintTile(v, colorLevel)).join(' ')}</Text>
          </Box>
        ))}
      </Box>
      <Text>{won ? 'You made 2048! ' : over ? 'Game over. ' : ''}arrows/hjkl move · r restart · q quit</Text>
      <Text dimColor>
        {user} · {columns}x{rows} · {LEVEL_NAMES[colorLevel]}
      </Text>
    </Box>
  );
}

/** The session handler: one game per session. */
export function gameHandler(seed?: number): Handler {
  return inkHandler((session, term) => (
    <Game user={session.user} stdout={term.stdout} colorLevel={term.colorLevel} seed={seed ?? Math.floor(Math.random() * 2 ** 32)} />
  ));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const addr = process.env.ADDR ?? '127.0.0.1:2222';
  const seed = process.env.GAME_SEED ? Number(process.env.GAME_SEED) : undefined;
  const server = new Server({ addr });
  server.use(logging(), activeTerm());
  server.handle(gameHandler(seed));
  server.on('error', (err) => console.error('error:', err.message));
  const { address, port } = await server.listenAndServe();
  console.log(`listening on ${address}:${port}: ssh -p ${port} localhost`);
}
