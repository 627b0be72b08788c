/**
 * Just enough of POSIX shell syntax to see which programs a command line runs and with which
 * arguments, so rules can reason about `rm` and its flags rather than about substrings. It errs on
 * the side of finding more commands (every operator, subshell and substitution starts a new one),
 * never fewer: a rule that denies may over-match, one that allows must not be fooled.
 */

export interface SimpleCommand {
  /** Program name without its directory (`/bin/rm` → `rm`), after wrappers like `sudo` or `env`. */
  program: string;
  args: string[];
  /** Redirection targets written to (`>`, `>>`, `&>`, `>|`, `1>` ...). */
  writes: string[];
}

export interface ParsedCommand {
  commands: SimpleCommand[];
  /** `$(...)`, backticks, `<(...)`: text whose output becomes code or arguments. */
  substitution: boolean;
}

type Token = { kind: 'word'; text: string } | { kind: 'sep'; text: string } | { kind: 'redir'; text: string };

const WRAPPERS = new Set(['sudo', 'doas', 'env', 'nohup', 'time', 'command', 'exec', 'nice', 'ionice', 'stdbuf', 'timeout', 'xargs', 'busybox', 'builtin']);
const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'ash', 'fish']);

const PLAIN_RUN = /[^\\'"\s<>&;|(){}`$]+/y;

function tokenize(text: string): { tokens: Token[]; substitution: boolean } {
  const tokens: Token[] = [];
  let word = '';
  let inWord = false;
  let substitution = false;
  const flush = (): void => {
    if (inWord) tokens.push({ kind: 'word', text: word });
    word = '';
    inWord = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      word += end < 0 ? text.slice(i + 1) : text.slice(i + 1, end);
      inWord = true;
      i = end < 0 ? text.length : end;
    } else if (c === '"') {
      // Inside double quotes, `$(...)` and backticks still run code.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        j++;
      }
      const inner = text.slice(i + 1, j);
      if (/\$\(|`/.test(inner)) substitution = true;
      word += inner.replace(/\\(.)/g, '$1');
      inWord = true;
      i = j;
    } else if (/\s/.test(c)) {
      if (c === '\n') {
        flush();
        tokens.push({ kind: 'sep', text: ';' });
      } else flush();
    } else if (c === '>' || (c === '<' && text[i + 1] !== '(')) {
      // An fd number right before a redirection (`2>`) belongs to it, not to the words.
      if (inWord && /^\d+$/.test(word)) {
        word = '';
        inWord = false;
      } else flush();
      let op = c;
      while (i + 1 < text.length && /[>&|<-]/.test(text[i + 1] as string)) op += text[++i];
      if (op.startsWith('<<')) tokens.push({ kind: 'sep', text: '<<' });
      else tokens.push({ kind: 'redir', text: op });
    } else if (c === '&' && text[i + 1] === '>') {
      flush();
      let op = '&>';
      i++;
      if (text[i + 1] === '>') op += text[++i];
      tokens.push({ kind: 'redir', text: op });
    } else if (';|&(){}`'.includes(c) || (c === '$' && text[i + 1] === '(') || (c === '<' && text[i + 1] === '(')) {
      flush();
      if (c === '`' || c === '$' || c === '<') substitution = true;
      if (c === '$' || c === '<') i++;
      tokens.push({ kind: 'sep', text: c });
    } else {
      // A whole run of ordinary characters at once: per character, a 1 MiB word took 400 ms.
      PLAIN_RUN.lastIndex = i;
      const run = PLAIN_RUN.exec(text)?.[0] ?? c;
      word += run;
      i += run.length - 1;
      inWord = true;
    }
  }
  flush();
  return { tokens, substitution };
}

/** Indexes, not slices: slicing per word made a line of many `A=1` words quadratic. */
function unwrap(words: string[]): string[] {
  let i = 0;
  const at = (k: number): string => words[k] as string;
  for (;;) {
    while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(at(i))) i++;
    if (i >= words.length || !WRAPPERS.has(basename(at(i)))) return words.slice(i);
    i++;
    // Wrapper options (`sudo -u root`, `timeout 5`, `xargs -0`) are skipped with their values;
    // guessing which take a value would miss commands, so skip anything that is not a plausible program.
    while (i < words.length && (/^-/.test(at(i)) || /^\d+[smhd]?$/.test(at(i)) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(at(i)))) {
      const flag = at(i++);
      if (/^-[ugCDpr]$/.test(flag) && i < words.length) i++;
    }
  }
}

function basename(word: string): string {
  const slash = word.lastIndexOf('/');
  return slash >= 0 ? word.slice(slash + 1) : word;
}

export function parseCommand(text: string, depth = 0): ParsedCommand {
  const { tokens, substitution } = tokenize(text);
  const commands: SimpleCommand[] = [];
  let words: string[] = [];
  let writes: string[] = [];
  const end = (): void => {
    const unwrapped = unwrap(words);
    const [program, ...args] = unwrapped;
    if (program !== undefined) {
      commands.push({ program: basename(program), args, writes });
      // `bash -c '...'` and `eval ...` run their argument as code: look inside it too.
      const name = basename(program);
      let code: string | undefined;
      if (SHELLS.has(name)) {
        const c = args.findIndex((a) => /^-[a-z]+$/.test(a) && a.includes('c'));
        if (c >= 0) code = args[c + 1];
      } else if (name === 'eval') code = args.join(' ');
      if (code !== undefined && depth < 4) {
        // A loop, not push(...): spreading a huge list overflows the stack.
        for (const inner of parseCommand(code, depth + 1).commands) commands.push(inner);
      }
    } else if (writes.length > 0) {
      commands.push({ program: '', args: [], writes });
    }
    words = [];
    writes = [];
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.kind === 'word') words.push(t.text);
    else if (t.kind === 'redir') {
      const target = tokens[i + 1];
      if (target?.kind === 'word') {
        i++;
        // `>&2` duplicates a descriptor; only a named target is written.
        const duplicatesFd = t.text.endsWith('&') && /^(\d+|-)$/.test(target.text);
        if (t.text.includes('>') && !duplicatesFd) writes.push(target.text);
      }
    } else {
      end();
    }
  }
  end();
  return { commands, substitution };
}
