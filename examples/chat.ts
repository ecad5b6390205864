/**
 * A chat room over SSH, like ssh-chat: everyone who connects is in one room, under their SSH
 * user name. Each user has their own terminal (size, colors) and a real line editor (Node's
 * readline on the session's terminal): what others say appears above the line being typed.
 *
 *   npx tsx examples/chat.ts
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ada@localhost
 *
 * Commands: /nick NAME, /me ACTION, /who, /help, /quit (or Ctrl-C, Ctrl-D).
 */
import { createInterface, type Interface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Server, activeTerm, createTerminal, logging, recover, type Handler, type Session, type Terminal } from '../src/index.js';

interface Member {
  nick: string;
  hue: number;
  term: Terminal;
  rl: Interface;
}

const HUES = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** One chat room: its members and what they say. */
export class Room {
  readonly members = new Set<Member>();
  private nextHue = 0;

  /** Serves one session until the user leaves. */
  readonly handler: Handler = async (session: Session) => {
    const term = createTerminal(session);
    const rl = createInterface({ input: term.stdin, output: term.stdout, terminal: true, prompt: '> ', historySize: 100 });
    const me: Member = { nick: this.uniqueNick(session.user), hue: HUES[this.nextHue++ % HUES.length]!, term, rl };
    const left = new Promise<void>((resolve) => rl.once('close', resolve));
    rl.on('SIGINT', () => rl.close());
    // readline redraws the input line itself on resize; this shows the new width in use.
    term.stdout.on('resize', () => this.notice(me, `* your window is now ${term.stdout.columns}x${term.stdout.rows}`));
    rl.on('line', (line) => {
      // Replace the echoed input line by what the room sees.
      term.stdout.moveCursor(0, -Math.max(1, Math.ceil((2 + line.length) / term.stdout.columns)));
      term.stdout.clearScreenDown();
      this.onLine(me, line.trim());
    });
    this.members.add(me);
    this.notice(me, `* welcome, ${me.nick}! ${this.members.size} here. /help lists the commands.`);
    this.broadcast(`* ${me.nick} joined`, me);
    rl.prompt();
    await left;
    this.members.delete(me);
    this.broadcast(`* ${me.nick} left`);
    term.close();
  };

  private onLine(me: Member, line: string): void {
    const [cmd, ...rest] = line.split(/\s+/);
    const arg = rest.join(' ');
    if (line === '') {
      me.rl.prompt();
    } else if (cmd === '/quit') {
      me.rl.close();
    } else if (cmd === '/help') {
      this.notice(me, '* /nick NAME  /me ACTION  /who  /quit');
    } else if (cmd === '/who') {
      this.notice(me, `* here: ${[...this.members].map((m) => m.nick).join(', ')}`);
    } else if (cmd === '/nick' && /^[\w.-]{1,16}$/.test(arg)) {
      const old = me.nick;
      me.nick = this.uniqueNick(arg);
      this.broadcast(`* ${old} is now ${me.nick}`);
    } else if (cmd === '/me' && arg) {
      this.broadcast(`* ${me.nick} ${arg}`);
    } else if (cmd!.startsWith('/')) {
      this.notice(me, `* unknown command ${cmd}; /help lists them`);
    } else {
      this.broadcast({ from: me, text: line });
    }
  }

  /** Sends a line (or a message) to everyone, except `skip`. */
  broadcast(what: string | { from: Member; text: string }, skip?: Member): void {
    for (const m of this.members) if (m !== skip) this.notice(m, typeof what === 'string' ? what : this.format(m, what.from, what.text));
  }

  /**
   * Prints a line on one member's screen above their input line, with the time at the right
   * edge of *their* window.
   */
  notice(to: Member, text: string): void {
    const out = to.term.stdout;
    const time = new Date().toTimeString().slice(0, 5);
    const width = visibleLength(text);
    const pad = Math.max(1, out.columns - width - time.length);
    out.clearLine(0);
    out.cursorTo(0);
    out.write(`${text}${' '.repeat(pad)}${time}\n`);
    to.rl.prompt(true);
  }

  /** `nick: text`, the nick colored when this reader's terminal has colors. */
  private format(reader: Member, from: Member, text: string): string {
    const nick = reader.term.colorLevel > 0 ? `\x1b[1;${from.hue}m${from.nick}\x1b[0m` : from.nick;
    return `${nick}: ${text.replace(/[\x00-\x1f\x7f]/g, '')}`;
  }

  private uniqueNick(wanted: string): string {
    const taken = new Set([...this.members].map((m) => m.nick));
    let nick = wanted.slice(0, 16) || 'anon';
    for (let i = 2; taken.has(nick); i++) nick = `${wanted.slice(0, 14)}${i}`;
    return nick;
  }
}

function visibleLength(s: string): number {
  return s.replace(/\x1b\[[\d;]*m/g, '').length;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const addr = process.env.ADDR ?? '127.0.0.1:2222';
  const room = new Room();
  const server = new Server({ addr });
  server.use(logging(), recover(), activeTerm());
  server.handle(room.handler);
  server.on('error', (err) => console.error('error:', err.message));
  const { address, port } = await server.listenAndServe();
  console.log(`listening on ${address}:${port}: ssh -p ${port} you@localhost`);
}
