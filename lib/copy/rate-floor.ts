/**
 * A body that trickles is as bad as one that stops, only slower to notice: undici's bodyTimeout
 * fires only when no byte at all arrives for a while. This counts the bytes of one response in
 * consecutive windows and says when a whole window stayed under the floor, so the copier can
 * drop that connection and resume from the byte it reached on a new one.
 */
export interface RateFloorOptions {
  /** The slowest acceptable rate. */
  bytesPerSecond: number;
  /** How long the rate must stay under the floor before the body counts as stalled. */
  windowMs: number;
  /**
   * With a bandwidth limit (lib/copy/bandwidth.ts): the total time the limit has held readers
   * back. That time is left out of the windows: only time the source was free to send counts,
   * so a stream the limit slows down is never mistaken for a trickling source.
   */
  heldMs?: () => number;
}

export const DEFAULT_RATE_FLOOR: Readonly<RateFloorOptions> = Object.freeze({ bytesPerSecond: 64 * 1024, windowMs: 60_000 });

export class RateFloor {
  private windowStart: number;
  private heldAtStart: number;
  private windowBytes = 0;

  constructor(private readonly o: RateFloorOptions, private readonly now: () => number) {
    this.windowStart = now();
    this.heldAtStart = o.heldMs?.() ?? 0;
  }

  /** Counts `n` more bytes; returns the measured rate (bytes/s) when the window just ended under the floor. */
  add(n: number): number | undefined {
    this.windowBytes += n;
    const held = this.o.heldMs?.() ?? 0;
    const elapsed = this.now() - this.windowStart - (held - this.heldAtStart);
    if (elapsed < this.o.windowMs) return undefined;
    const rate = (this.windowBytes * 1000) / elapsed;
    this.windowStart = this.now();
    this.heldAtStart = held;
    this.windowBytes = 0;
    return rate < this.o.bytesPerSecond ? rate : undefined;
  }
}
