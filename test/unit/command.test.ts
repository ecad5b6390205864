import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitCommand } from '../../src/command.js';

function check(raw: string, expected: string[]): void {
  assert.deepEqual(splitCommand(raw), expected, JSON.stringify(raw));
}

describe('splitCommand', () => {
  it('splits words and removes quotes', () => {
    check(`ls -la 'a b'`, ['ls', '-la', 'a b']);
    check(`echo "a  b" c`, ['echo', 'a  b', 'c']);
    check(`  a \t b\nc  `, ['a', 'b', 'c']);
    check(`a'b'"c"d`, ['abcd']);
  });

  it('returns [] for empty, blank or comment-only input', () => {
    check('', []);
    check('   ', []);
    check(' \t\n ', []);
    check('# just a comment', []);
  });

  it('does not expand $ forms', () => {
    check(`echo "$HOME"`, ['echo', '$HOME']);
    check(`echo $HOME`, ['echo', '$HOME']);
    check(`echo "\${X}y"`, ['echo', '${X}y']);
    check(`echo \${X} \${} \${X`, ['echo', '${X}', '${}', '${X']);
    check(`echo $1 $? $$ $* $_FOO $# $`, ['echo', '$1', '$?', '$$', '$*', '$_FOO', '$#', '$']);
    check(`echo "a $ b" '$HOME'`, ['echo', 'a $ b', '$HOME']);
    check(`echo "$(ls -l)" \`date\``, ['echo', '$(ls -l)', '`date`']);
  });

  it('does not group unquoted $(…) or ${…} with spaces or operators', () => {
    check(`$(ls -l)`, ['$', '(', 'ls', '-l', ')']);
    check(`\${X:-a b}`, ['${X:-a', 'b}']);
  });

  it('makes operators words of their own', () => {
    check('a|b', ['a', '|', 'b']);
    check('a && b', ['a', '&&', 'b']);
    check('x > f', ['x', '>', 'f']);
    check('a;b', ['a', ';', 'b']);
    check('a||b&c', ['a', '||', 'b', '&', 'c']);
    check('cmd 2>&1 >>log', ['cmd', '2', '>&', '1', '>>', 'log']);
    check('(a)', ['(', 'a', ')']);
    check('a<<b', ['a', '<', '<', 'b']);
    check(`'a|b' "&&"`, ['a|b', '&&']);
  });

  it('keeps empty quotes as empty words', () => {
    check(`echo '' x`, ['echo', '', 'x']);
    check(`echo "" x`, ['echo', '', 'x']);
    check(`''`, ['']);
    check(`a'' ""b`, ['a', 'b']);
  });

  it('drops comments that start a word, up to the end of the line', () => {
    check('echo hi # comment', ['echo', 'hi']);
    check('echo hi #comment "with quotes', ['echo', 'hi']);
    check('a;#b', ['a', ';']);
    check('a # one\nb # two', ['a', 'b']);
    check(`a#b ''#c "x"#y \\#z`, ['a#b', '#c', 'x#y', '#z']);
  });

  it('does not glob', () => {
    check('*.txt', ['*.txt']);
    check('ls a?c [ab]* ~/x {a,b}', ['ls', 'a?c', '[ab]*', '~/x', '{a,b}']);
    check(`'*'`, ['*']);
  });

  it('applies backslash escapes', () => {
    check('a\\ b', ['a b']);
    check(`\\'x\\" \\| \\\\ \\#`, [`'x"`, '|', '\\', '#']);
    check('a\\\nb', ['ab']); // line continuation
    check('a\\', ['a\\']); // trailing backslash is literal
    check(`"a\\"b\\\\c\\$d\\\`e\\xf"`, ['a"b\\c$d`e\\xf']);
    check('"a\\\nb"', ['ab']);
    check(`'a\\b\\'`, ['a\\b\\']); // no escapes in single quotes
  });

  it('handles backslashes next to quotes that trip up shell-quote', () => {
    check(`cd 'C:\\' && cd 'x'`, ['cd', 'C:\\', '&&', 'cd', 'x']);
    check(`echo "a\\\\" "b"`, ['echo', 'a\\', 'b']);
    check(`\\\\'a b'`, ['\\a b']);
    check('\\\\|x', ['\\', '|', 'x']);
  });

  it('treats an unclosed quote as running to the end of the input', () => {
    check(`echo 'a b`, ['echo', 'a b']);
    check(`echo "a b`, ['echo', 'a b']);
    check(`echo "a \\`, ['echo', 'a \\']);
    check(`it's x | y`, ['its x | y']);
    check(`'`, ['']);
    check(`"`, ['']);
  });

  it('keeps unicode, including non-ASCII whitespace, as ordinary characters', () => {
    check('héllo 日本語 🎉 "ü x"', ['héllo', '日本語', '🎉', 'ü x']);
    check('a\u00a0b c\rd', ['a\u00a0b', 'c\rd']);
    check(`a'\uE000'b \uE000b`, ['a\uE000b', '\uE000b']);
  });
});
