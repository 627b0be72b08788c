import { RE2JS } from 're2js';

/** A pattern that is not a valid RE2 expression: a syntax error, or a backreference or lookaround. */
export class PatternError extends Error {
  override readonly name = 'PatternError';
}

export interface Match {
  start: number;
  end: number;
  /** Capture groups from 1; a group that took no part in the match is null. */
  groups: Array<string | null>;
}

/**
 * A regular expression matched in time linear in its input (RE2 semantics: no backreferences, no
 * lookaround). Every pattern that sees whole request text, built-in or from a project's policy, is
 * one of these: V8's backtracking engine let a 96-byte request hold a mount's thread for seconds.
 */
export class LinearRegExp {
  private readonly re: RE2JS;

  constructor(
    readonly source: string,
    options: { caseInsensitive?: boolean } = {},
  ) {
    try {
      this.re = RE2JS.compile(source, options.caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
    } catch (error) {
      throw new PatternError(`${(error as Error).message} (patterns use RE2 syntax, matched in linear time: no backreferences or lookaround)`);
    }
  }

  test(text: string): boolean {
    return this.re.test(text);
  }

  /** Leftmost-first, non-overlapping matches, in order. */
  *matches(text: string): Generator<Match> {
    const m = this.re.matcher(text);
    const count = m.groupCount();
    while (m.find()) {
      const groups: Array<string | null> = [];
      for (let g = 1; g <= count; g++) groups.push(m.group(g));
      yield { start: m.start(), end: m.end(), groups };
    }
  }
}
