import type { Dispatcher } from 'undici';

/**
 * --bwlimit / ARCHIVE_BWLIMIT: one token bucket for the whole run, shared by every download
 * body (all files, all streams). A body that receives a chunk pays for it; when the bucket is
 * in debt the connection is paused (undici stops reading the socket, TCP pushes back on the
 * sender) until the debt is repaid. Nothing is buffered beyond what undici already holds, and
 * the pause is a timer on the request, cleared when the request ends, fails or is aborted:
 * Ctrl-C or a deadline never waits for it.
 */
export interface BandwidthLimiter {
  readonly bytesPerSecond: number;
  /** Charges `n` bytes just received; returns how long (ms) the reader should pause before more. */
  take: (n: number) => number;
  /**
   * Total time (ms) the limit has held readers back so far (the bucket in debt). lib/copy/rate-floor.ts
   * leaves it out of its windows: a stream the limit slows down is not a trickling source.
   */
  heldMs: () => number;
}

export interface BandwidthLimiterOptions {
  /** Bytes the bucket holds when full (a burst after an idle spell); default max(64 KiB, 100 ms of the rate). */
  burstBytes?: number;
  now?: () => number;
}

export function createBandwidthLimiter(bytesPerSecond: number, options: BandwidthLimiterOptions = {}): BandwidthLimiter {
  if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new RangeError(`bandwidth limit must be a positive rate, got ${bytesPerSecond}`);
  const now = options.now ?? Date.now;
  const msPerByte = 1000 / bytesPerSecond;
  const burstMs = (options.burstBytes ?? Math.max(64 * 1024, bytesPerSecond / 10)) * msPerByte;
  // The bucket as a clock: `paidUntil` is when every byte charged so far is paid for at the
  // rate. Ahead of now: in debt by (paidUntil - now) ms. A full bucket is now - burstMs.
  let paidUntil = now() - burstMs;
  // Debt spells, for heldMs(): closed ones summed, the open one since `debtSince`.
  let heldClosed = 0;
  let debtSince: number | undefined;

  const closeSpell = (t: number): void => {
    if (debtSince !== undefined && paidUntil <= t) {
      heldClosed += paidUntil - debtSince;
      debtSince = undefined;
    }
  };
  return {
    bytesPerSecond,
    take(n) {
      const t = now();
      closeSpell(t);
      paidUntil = Math.max(paidUntil, t - burstMs) + n * msPerByte;
      if (paidUntil > t && debtSince === undefined) debtSince = t;
      return Math.max(0, paidUntil - t);
    },
    heldMs() {
      const t = now();
      closeSpell(t);
      return heldClosed + (debtSince === undefined ? 0 : t - debtSince);
    },
  };
}

/**
 * The controller the handlers below this one see: their pause()/resume() (the body stream's
 * backpressure) and the limit's hold are kept apart, so a read never resumes a held connection
 * and the end of a hold never resumes a body that is full.
 */
class HeldController implements Dispatcher.DispatchController {
  private downstreamPaused = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly upstream: Dispatcher.DispatchController) {}

  get aborted(): boolean { return this.upstream.aborted; }
  get paused(): boolean { return this.downstreamPaused; }
  get reason(): Error | null { return this.upstream.reason; }
  get rawHeaders(): Dispatcher.DispatchController['rawHeaders'] { return this.upstream.rawHeaders; }
  get rawTrailers(): Dispatcher.DispatchController['rawTrailers'] { return this.upstream.rawTrailers; }

  pause(): void {
    this.downstreamPaused = true;
    this.upstream.pause();
  }

  resume(): void {
    this.downstreamPaused = false;
    if (this.timer === undefined) this.upstream.resume();
  }

  abort(reason: Error): void {
    this.release(false);
    this.upstream.abort(reason);
  }

  /** Pauses the connection for `ms` (a later hold replaces an earlier one: it ends no sooner). */
  hold(ms: number): void {
    if (ms <= 0 || this.upstream.aborted) return;
    clearTimeout(this.timer);
    this.upstream.pause();
    this.timer = setTimeout(() => this.release(true), ms);
  }

  /** Ends the hold; `resume`: let bytes flow again unless the body below asked for a pause. */
  release(resume: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (resume && !this.downstreamPaused && !this.upstream.aborted) this.upstream.resume();
  }
}

class LimitedHandler implements Dispatcher.DispatchHandler {
  private controller: HeldController | undefined;

  constructor(private readonly limiter: BandwidthLimiter, private readonly handler: Dispatcher.DispatchHandler) {}

  private wrap(upstream: Dispatcher.DispatchController): HeldController {
    if (this.controller?.upstream !== upstream) this.controller = new HeldController(upstream);
    return this.controller;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(this.wrap(controller), context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[2], socket: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[3]): void {
    this.handler.onRequestUpgrade?.(this.wrap(controller), statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2], statusMessage?: string): void {
    this.handler.onResponseStart?.(this.wrap(controller), statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.wrap(controller);
    this.handler.onResponseData?.(held, chunk);
    held.hold(this.limiter.take(chunk.length));
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>[1]): void {
    const held = this.wrap(controller);
    held.release(false);
    this.handler.onResponseEnd?.(held, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    const held = this.wrap(controller);
    held.release(false);
    this.handler.onResponseError?.(held, error);
  }
}

/** An undici interceptor: every response body through the dispatcher it is composed on shares `limiter`. */
export function bandwidthInterceptor(limiter: BandwidthLimiter): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new LimitedHandler(limiter, handler));
}

/** `dispatcher` with every response body held to `bytesPerSecond` in total; the limiter, for the rate floor. */
export function limitBandwidth(dispatcher: Dispatcher, bytesPerSecond: number): { dispatcher: Dispatcher; limiter: BandwidthLimiter } {
  const limiter = createBandwidthLimiter(bytesPerSecond);
  return { dispatcher: dispatcher.compose(bandwidthInterceptor(limiter)), limiter };
}
