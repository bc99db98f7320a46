/**
 * Which archived backups a prune keeps (pure; unit-tested). Per graph: the `keepLast` newest
 * (by backup time, else archive time) and every one younger than `keepWithinMs`; the others
 * go. A backup whose manifest.json cannot be read has no known time: it is always kept and
 * does not count towards `keepLast` (it cannot stand in for a usable backup).
 */
export interface PruneCandidate {
  graphId: string;
  backupId: string;
  /** Epoch ms: backupTime, else archivedAt; undefined when manifest.json is unusable. */
  time: number | undefined;
}

export type KeepReason = 'last' | 'within' | 'unreadable';

export interface PrunePlan<T extends PruneCandidate> {
  keep: (T & { reasons: KeepReason[] })[];
  remove: T[];
}

export interface PruneRules {
  /** At least 1: prune never empties a graph by count alone. */
  keepLast: number;
  keepWithinMs?: number | undefined;
  now: number;
}

function newestFirst(a: PruneCandidate, b: PruneCandidate): number {
  return (b.time ?? 0) - (a.time ?? 0) || (a.backupId < b.backupId ? 1 : a.backupId > b.backupId ? -1 : 0);
}

export function planPrune<T extends PruneCandidate>(candidates: readonly T[], rules: PruneRules): PrunePlan<T> {
  const byGraph = new Map<string, T[]>();
  for (const c of candidates) byGraph.set(c.graphId, [...(byGraph.get(c.graphId) ?? []), c]);
  const plan: PrunePlan<T> = { keep: [], remove: [] };
  for (const graphId of [...byGraph.keys()].sort()) {
    const backups = byGraph.get(graphId)!;
    for (const b of backups.filter((x) => x.time === undefined)) plan.keep.push({ ...b, reasons: ['unreadable'] });
    backups.filter((x) => x.time !== undefined).sort(newestFirst).forEach((b, rank) => {
      const reasons: KeepReason[] = [];
      if (rank < rules.keepLast) reasons.push('last');
      if (rules.keepWithinMs !== undefined && rules.now - b.time! < rules.keepWithinMs) reasons.push('within');
      if (reasons.length > 0) plan.keep.push({ ...b, reasons });
      else plan.remove.push(b);
    });
  }
  return plan;
}
