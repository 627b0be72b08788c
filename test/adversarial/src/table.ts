import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

/** One hostile input at one door, and what must come back. */
export interface Case {
  readonly name: string;
}

/** Every door keeps at least this many hostile cases, so a table cannot quietly shrink. */
export const MIN_CASES_PER_DOOR = 30;

/**
 * Registers one test per row of `table` under `door`. Each row asserts the exact error and that
 * nothing was lost or left behind; `check` is where it does so.
 */
export function door<C extends Case>(name: string, table: readonly C[], check: (row: C) => Promise<void>): void {
  describe(`adversarial: ${name}`, () => {
    it(`keeps at least ${MIN_CASES_PER_DOOR} cases`, () => {
      assert.ok(table.length >= MIN_CASES_PER_DOOR, `${name} has ${table.length} cases`);
      assert.equal(new Set(table.map((row) => row.name)).size, table.length, `${name} has duplicate case names`);
    });
    for (const row of table) it(row.name, () => check(row));
  });
}
