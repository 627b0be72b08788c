/** Progress of `export` and `import` on one stderr line, only when stderr is a terminal (never in pipes or logs). */
export function progressLine(verb: string): ((p: { events: number; bytes: number; phase?: string }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return ({ events, bytes, phase }) => {
    const now = Date.now();
    if (now - last < 100) return;
    last = now;
    process.stderr.write(`\r${phase ?? verb}: ${events} events, ${(bytes / 2 ** 20).toFixed(1)} MiB\u001b[K`);
  };
}

/** Ends the progress line, if one was drawn. */
export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
}
