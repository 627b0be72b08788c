/** Exit statuses shared by the CLI's commands. */
export const EXIT = {
  ok: 0,
  /** Refused by the project's rules, or a conflict; also an unexpected error. */
  refused: 1,
  error: 1,
  usage: 2,
  storeUnreachable: 3,
} as const;

/** A subcommand: parses its own arguments, returns the exit status. */
export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

/** Thrown by argument parsing; the command prints the message and exits with `EXIT.usage`. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
