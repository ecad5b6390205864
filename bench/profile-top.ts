/**
 * Summarises a V8 `.cpuprofile` (from `npm run bench -- --cpu-prof`): the functions with the
 * most self time, and with the most inclusive time, optionally only those whose script URL
 * contains a filter (e.g. `/src/`).
 *
 *   node --import tsx bench/profile-top.ts <file.cpuprofile> [--filter /src/] [--top 15]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
  const argv = process.argv.slice(2);
  const file = argv.find((a) => !a.startsWith('--') && argv[argv.indexOf(a) - 1] !== '--filter' && argv[argv.indexOf(a) - 1] !== '--top');
  const filterAt = argv.indexOf('--filter');
  const topAt = argv.indexOf('--top');
  const filter = filterAt >= 0 ? argv[filterAt + 1] : undefined;
  const top = topAt >= 0 ? Number(argv[topAt + 1]) : 15;
  if (!file) {
    process.stderr.write('usage: profile-top.ts <file.cpuprofile> [--filter <url part>] [--top N]\n');
    process.exit(2);
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
  const urlOf = new Map<string, string>();
  for (const n of p.nodes) urlOf.set(key(n.callFrame), n.callFrame.url);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    let id: number | undefined = p.samples[i]!;
    const leaf = byId.get(id)!;
    self.set(key(leaf.callFrame), (self.get(key(leaf.callFrame)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let depth = 0; id !== undefined && depth < 1000; depth++) {
      const k = key(byId.get(id)!.callFrame);
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  const show = (title: string, m: Map<string, number>): void => {
    const rows = [...m.entries()].filter(([k]) => !filter || (urlOf.get(k) ?? '').includes(filter)).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`\n${title} (of ${total.toFixed(0)} ms sampled${filter ? `, only ${filter}` : ''})\n`);
    for (const [k, ms] of rows.slice(0, top)) process.stdout.write(`${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  };
  show('self time', self);
  show('inclusive time', incl);
}

main();
