/**
 * The `--sample` share: which files a verification re-reads. Like restic's
 * `--read-data-subset=n%`, a random subset, so that repeated drills cover everything over
 * time; unlike it, an exact count (the percentage of the files, rounded up), so a drill's
 * cost is predictable and at least one file is read for any share above zero.
 */
export function sampleSize(total: number, percent: number): number {
  if (percent >= 100) return total;
  if (percent <= 0) return 0;
  // The small epsilon keeps 40 × 12.5% at 5, not 6, despite binary floating point.
  return Math.max(0, Math.min(total, Math.ceil((total * percent) / 100 - 1e-9)));
}

/**
 * Picks `sampleSize(total, percent)` distinct indexes in [0, total) with a partial
 * Fisher-Yates shuffle. `random` returns [0, 1) like Math.random; tests and `--seed` pass
 * a seeded one so the choice can be repeated.
 */
export function chooseSample(total: number, percent: number, random: () => number): Set<number> {
  const k = sampleSize(total, percent);
  if (k === total) return new Set(Array.from({ length: total }, (_, i) => i));
  const indexes = Array.from({ length: total }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (total - i));
    const a = indexes[i]!;
    indexes[i] = indexes[j]!;
    indexes[j] = a;
  }
  return new Set(indexes.slice(0, k));
}

/** mulberry32: a small, fast, seeded generator (not for secrets; for repeatable samples). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
