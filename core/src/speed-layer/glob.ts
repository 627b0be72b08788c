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

/** A name pattern (tools, agents) where only `*` is special; `a*a*a*b` would be polynomial in V8. */
export function namePattern(pattern: string): LinearRegExp {
  return new LinearRegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, { caseInsensitive: true });
}
