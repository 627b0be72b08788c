import { LinearRegExp } from './linearRegex.js';

/**
 * Compiles a glob to an anchored regular expression: `**` any characters including `/`, `*` any
 * characters but `/`, `?` one character but `/`. Everything else is literal. Patterns without a `/`
 * in them (e.g. `*.pem`) match the last path component anywhere, as in .gitignore.
 */
export function globToRegExp(glob: string, options: { caseInsensitive?: boolean } = {}): LinearRegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const anchored = glob.includes('/') ? `^${re}$` : `(?:^|/)${re}$`;
  return new LinearRegExp(anchored, options.caseInsensitive ? { caseInsensitive: true } : {});
}

export interface NameMatcher {
  test(name: string): boolean;
}

/**
 * A name pattern (tools, agents) where only `*` is special, case-insensitive. Matched without a
 * regular expression: the literal pieces between stars are found left to right, which is correct
 * for `*`-only patterns, never backtracks further, and is much faster than any engine per call.
 */
export function namePattern(pattern: string): NameMatcher {
  const [first = '', ...rest] = pattern.toLowerCase().split('*');
  const last = rest.pop();
  return {
    test(name) {
      const n = name.toLowerCase();
      if (last === undefined) return n === first;
      if (!n.startsWith(first) || n.length < first.length + last.length || !n.endsWith(last)) return false;
      let at = first.length;
      const end = n.length - last.length;
      for (const piece of rest) {
        const found = n.indexOf(piece, at);
        if (found < 0 || found + piece.length > end) return false;
        at = found + piece.length;
      }
      return true;
    },
  };
}
