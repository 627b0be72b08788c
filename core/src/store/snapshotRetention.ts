/**
 * Which snapshots a store may delete (ADR 0031): it keeps the newest `KEPT_NEWEST`, plus the oldest
 * snapshot in each span of `SPARSE_SPAN` sequence numbers, so a history view however old replays at
 * most about two spans while storage grows by one snapshot per span, not per save. Both backends
 * apply this same rule whenever they save a snapshot.
 */
const KEPT_NEWEST = 8;
const SPARSE_SPAN = 10_000;

export function snapshotsToPrune(seqs: readonly number[]): number[] {
  const older = [...seqs].sort((a, b) => b - a).slice(KEPT_NEWEST).reverse();
  const spans = new Set<number>();
  return older.filter((seq) => {
    const span = Math.floor(seq / SPARSE_SPAN);
    if (spans.has(span)) return true;
    spans.add(span);
    return false;
  });
}
