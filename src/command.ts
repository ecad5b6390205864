/**
 * Splitting an `exec` request's command line into words.
 *
 * @module
 */

import { parse } from 'shell-quote';

/**
 * Splits an `exec` command line into words by POSIX shell quoting rules, without expanding
 * anything: the words are what a shell would pass to the program before parameter expansion,
 * command substitution and globbing.
 *
 * Rules:
 *
 * - **Words** are separated by unquoted spaces, tabs and newlines. Other whitespace (a
 *   no-break space, `\r`, …) is an ordinary character. Input with no words (empty,
 *   whitespace only, only a comment) gives `[]`.
 * - **Single quotes** keep everything up to the next `'` literally, backslashes included.
 * - **Double quotes** keep everything literally, except that a backslash before `$`, `` ` ``,
 *   `"` or `\` stands for that character and a backslash before a newline is removed; any
 *   other backslash stays.
 * - **Unquoted backslash** makes the next character literal (`a\ b` is one word `a b`); a
 *   backslash before a newline is removed (line continuation). A backslash at the very end is
 *   kept as a literal `\`, as `sh -c` does.
 * - **Unclosed quotes** never throw: the quote runs to the end of the input, as if it were
 *   closed there, so `echo 'a b` gives `['echo', 'a b']`.
 * - **Empty quotes** make a word even if nothing else does: `echo '' x` gives
 *   `['echo', '', 'x']`, while `a''` is just `a`.
 * - **No expansion**: `$` is an ordinary character, so `$HOME`, `"${X}y"`, `$1`, `$?` and
 *   `"$(cmd)"` come out as the literal text `$HOME`, `${X}y`, `$1`, `$?` and `$(cmd)`. The
 *   same goes for backquotes and `~`. Because `${…}` and `$(…)` are not recognised as units,
 *   an unquoted space or operator inside them splits them like anywhere else
 *   (`$(ls -l)` gives `['$', '(', 'ls', '-l', ')']`); quote them to keep them whole.
 * - **No globbing**: `*`, `?` and `[…]` stay as they are (`*.txt` is the word `*.txt`).
 * - **Operators**: unquoted `|`, `&`, `;`, `<`, `>`, `(` and `)` end a word and form
 *   operator words of their own, grouped as shell-quote groups them: `||`, `&&`, `;;`, `|&`,
 *   `<(`, `<<<`, `>>`, `>&`, `<&`, else one character each (so `<<` gives `'<', '<'`). An
 *   operator word is indistinguishable from the same text quoted (`'|'`).
 * - **Comments**: an unquoted `#` at the start of a word drops everything up to the end of
 *   the line; a `#` inside a word is literal (`a#b` is one word).
 *
 * shell-quote's `parse` does the word splitting and operator grouping. A pre-pass applies the
 * quoting rules above and hands `parse` each word single-quoted, because `parse`'s own quote
 * handling differs from them: it expands `$NAME` (unset names become `''`), throws on `${}`,
 * silently drops an unclosed quote, mis-splits `'C:\' 'x'` and `\\|`, and starts a comment at
 * any unquoted `#`, even inside a word.
 *
 * @param raw - The command line, e.g. the `command` of an `exec` request.
 * @returns The words, quotes removed; never throws.
 *
 * @example
 * ```ts
 * splitCommand(`ls -la 'a b'`);      // ['ls', '-la', 'a b']
 * splitCommand(`echo "$HOME" \${X}`); // ['echo', '$HOME', '${X}']
 * splitCommand('a|b && c > f');      // ['a', '|', 'b', '&&', 'c', '>', 'f']
 * splitCommand(`echo '' x # note`);  // ['echo', '', 'x']
 * splitCommand('rm *.txt a\\ b');    // ['rm', '*.txt', 'a b']
 * splitCommand(`echo 'unclosed x`);  // ['echo', 'unclosed x']
 * splitCommand('   ');               // []
 * ```
 * @see POSIX.1-2017 XCU §2.2 (Quoting) and §2.3 (Token Recognition); RFC 4254 §6.5
 */
export function splitCommand(raw: string): string[] {
  const quoted = requote(raw);
  if (quoted === '') return [];
  const words: string[] = [];
  for (const entry of parse(quoted)) {
    if (typeof entry === 'string') words.push(decode(entry));
    else if ('pattern' in entry) words.push(decode(entry.pattern)); // not produced: every word is quoted
    else if ('op' in entry) words.push(entry.op);
    // `{ comment }` is not produced either: the pre-pass removes comments.
  }
  return words;
}

/**
 * Private-use character that starts an escape in the text handed to `parse`. Inside single
 * quotes `parse` mishandles a backslash before the closing quote, so word text reaches it
 * with `\`, `'` and this character itself escaped.
 */
const ESC = '\uE000';
const ENCODE: Readonly<Record<string, string>> = { '\\': `${ESC}b`, "'": `${ESC}q`, [ESC]: `${ESC}e` };
const DECODE: Readonly<Record<string, string>> = { b: '\\', q: "'", e: ESC };

/** Single-quotes a word's final text for `parse`. */
function encode(word: string): string {
  return `'${word.replace(/[\\'\uE000]/g, (c) => ENCODE[c] ?? c)}'`;
}

/** Undoes {@link encode}'s escapes in a word `parse` returned. */
function decode(word: string): string {
  return word.includes(ESC) ? word.replace(/\uE000([bqe])/g, (_, c: string) => DECODE[c] ?? c) : word;
}

const OPERATOR_CHARS = '|&;<>()';
const DOUBLE_QUOTE_ESCAPABLE = '$`"\\';

/**
 * Applies the quoting rules of {@link splitCommand} and rewrites `raw` for `parse`: each word
 * single-quoted and encoded, unquoted operator characters as they were, a space between words;
 * comments removed. Returns `''` when there is nothing but separators.
 */
function requote(raw: string): string {
  const n = raw.length;
  let out = '';
  let word = '';
  let inWord = false; // a word has started, possibly with only empty quotes so far

  const endWord = (): void => {
    if (inWord) out += encode(word);
    word = '';
    inWord = false;
  };

  let i = 0;
  while (i < n) {
    const c = raw[i] as string;
    if (c === ' ' || c === '\t' || c === '\n') {
      endWord();
      if (out !== '') out += ' ';
      i++;
    } else if (OPERATOR_CHARS.includes(c)) {
      endWord();
      out += c;
      i++;
    } else if (c === '#' && !inWord) {
      const eol = raw.indexOf('\n', i);
      i = eol === -1 ? n : eol;
    } else if (c === '\\') {
      if (i + 1 === n) {
        word += '\\';
        inWord = true;
      } else if (raw[i + 1] !== '\n') {
        word += raw[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === "'") {
      const close = raw.indexOf("'", i + 1);
      const end = close === -1 ? n : close;
      word += raw.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      while (i < n && raw[i] !== '"') {
        const d = raw[i] as string;
        const next = raw[i + 1];
        if (d === '\\' && next === '\n') {
          i += 2;
        } else if (d === '\\' && next !== undefined && DOUBLE_QUOTE_ESCAPABLE.includes(next)) {
          word += next;
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++; // the closing quote, or past the end
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endWord();
  return out;
}
