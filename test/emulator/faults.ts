// Injectable faults. Each is counted and consumed when it fires, so a test states exactly how
// many requests misbehave; reset() clears them all.
import type { FaultControls, GesFaultOp, GesFaultResponse } from './types.js';

interface Counted<T> {
  value: T;
  remaining: number;
}

export type CutKind = 'truncate' | 'expire-links';

export interface DownloadCut {
  kind: CutKind;
  afterBytes: number;
}

/** What the servers need from the rest of the emulator to carry out some faults. */
export interface FaultHooks {
  invalidateTokens(includeStatic: boolean): void;
  changeFile(graphId: string, backupId: string, name: string, newSeed: string): void;
  restoreFiles(): void;
}

function take<T>(list: Counted<T>[], match: (v: T) => boolean): T | undefined {
  const i = list.findIndex((c) => match(c.value));
  if (i < 0) return undefined;
  const entry = list[i] as Counted<T>;
  if (--entry.remaining <= 0) list.splice(i, 1);
  return entry.value;
}

function count(times: number): number {
  if (!(times > 0)) throw new RangeError(`times must be positive, got ${times}`);
  return times;
}

export class FaultState implements FaultControls {
  private ges: Counted<{ op: GesFaultOp; resp: GesFaultResponse }>[] = [];
  private cuts: Counted<{ name: string; cut: DownloadCut }>[] = [];
  private obs: Counted<{ name: string; status: number }>[] = [];
  private expiredTime: Counted<string>[] = [];
  private offsetIgnored: Counted<true>[] = [];
  private importFailures: Counted<string>[] = [];
  private bytesPerSecond: number | null = null;

  constructor(private readonly hooks: FaultHooks) {}

  failGes(op: GesFaultOp, resp: GesFaultResponse, times = 1): void {
    this.ges.push({ value: { op, resp }, remaining: count(times) });
  }

  invalidateTokens(options: { includeStatic?: boolean } = {}): void {
    this.hooks.invalidateTokens(options.includeStatic ?? false);
  }

  truncateDownload(name: string, afterBytes: number, times = 1): void {
    this.cuts.push({ value: { name, cut: { kind: 'truncate', afterBytes } }, remaining: count(times) });
  }

  expireLinksAfterBytes(name: string, afterBytes: number): void {
    this.cuts.push({ value: { name, cut: { kind: 'expire-links', afterBytes } }, remaining: 1 });
  }

  throttleDownloads(bytesPerSecond: number | null): void {
    if (bytesPerSecond !== null && !(bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be positive, got ${bytesPerSecond}`);
    this.bytesPerSecond = bytesPerSecond;
  }

  malformedLinkExpiredTime(value: string, times = Number.POSITIVE_INFINITY): void {
    this.expiredTime.push({ value, remaining: count(times) });
  }

  obsStatus(name: string, status: number, times = 1): void {
    this.obs.push({ value: { name, status }, remaining: count(times) });
  }

  ignoreListOffset(times = Number.POSITIVE_INFINITY): void {
    this.offsetIgnored.push({ value: true, remaining: count(times) });
  }

  failImport(reason: string, times = 1): void {
    this.importFailures.push({ value: reason, remaining: count(times) });
  }

  changeFile(graphId: string, backupId: string, name: string, newSeed: string): void {
    this.hooks.changeFile(graphId, backupId, name, newSeed);
  }

  reset(): void {
    this.ges = [];
    this.cuts = [];
    this.obs = [];
    this.expiredTime = [];
    this.offsetIgnored = [];
    this.importFailures = [];
    this.bytesPerSecond = null;
    this.hooks.restoreFiles();
  }

  // ---- used by the servers ----

  /** 'token', 'list', 'links', 'import' and 'job' requests also match 'any'; other GES/IAM requests match only 'any'. */
  takeGes(op: Exclude<GesFaultOp, 'any'> | 'other'): GesFaultResponse | undefined {
    return take(this.ges, (f) => f.op === 'any' || f.op === op)?.resp;
  }

  /** Claims a cut for a response of `bodyBytes`; a cut that would not fire within it stays pending. */
  takeCut(name: string, bodyBytes: number): DownloadCut | undefined {
    return take(this.cuts, (f) => f.name === name && f.cut.afterBytes < bodyBytes)?.cut;
  }

  takeObsStatus(name: string): number | undefined {
    return take(this.obs, (f) => f.name === name)?.status;
  }

  takeIgnoreListOffset(): boolean {
    return take(this.offsetIgnored, () => true) === true;
  }

  takeImportFailure(): string | undefined {
    return take(this.importFailures, () => true);
  }

  takeLinkExpiredTime(): string | undefined {
    return take(this.expiredTime, () => true);
  }

  get throttle(): number | null {
    return this.bytesPerSecond;
  }
}
