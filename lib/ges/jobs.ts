import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../retry.js';
import type { GesImportApi } from './client.js';
import type { GesJob } from './types.js';

/**
 * Follows a GES job (docs/ges-api.md §4.4) until it ends: `success` ends it, `failed` and
 * `partiallyFailed` are IMPORT_FAILED with GES's `fail_reason`; every other status (pending,
 * running, waiting, or one GES invents) means "not finished yet". Each status request goes
 * through the GES client, so it has the one retry policy and token renewal; a poll that still
 * fails after those ends the wait. The wait has a time limit: a job that has not ended by then
 * may still be running in GES, and the error says so (importing again would start a second job).
 */
export const JOB_SUCCESS = 'success';
const JOB_FAILED: ReadonlySet<string> = new Set(['failed', 'partiallyfailed']);

export interface JobWaitOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Time between two status requests (ms). */
  pollIntervalMs: number;
  signal?: AbortSignal | undefined;
  /** Called after every status answer, for a progress line. */
  onPoll?: ((poll: JobPoll) => void) | undefined;
  /** Clock; default Date.now. */
  now?: (() => number) | undefined;
}

export interface JobPoll {
  job: GesJob;
  /** Status requests answered so far, this one included. */
  polls: number;
  elapsedMs: number;
}

export interface JobWaitDeps {
  ges: Pick<GesImportApi, 'getJobStatus'>;
  logger: Logger;
}

/** What was asked of the job, for messages: "the import of bucket/prefix into graph G". */
export interface JobSubject {
  graphId: string;
  jobId: string;
  what: string;
}

/** Waits for the job; resolves with its last status (`success`), throws IMPORT_FAILED otherwise. */
export async function waitForJob(deps: JobWaitDeps, subject: JobSubject, options: JobWaitOptions): Promise<GesJob> {
  const now = options.now ?? Date.now;
  const started = now();
  const { graphId, jobId, what } = subject;
  let polls = 0;
  let last: GesJob | undefined;
  for (;;) {
    try {
      last = await deps.ges.getJobStatus(graphId, jobId, { ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      if (isAbortError(err) || options.signal?.aborted) throw err;
      throw new ArchiverError(ErrorCodes.ImportFailed,
        `Could not follow GES job ${jobId} (${what}): ${err instanceof Error ? err.message : String(err)}. The job may still be running: check it in the GES console.`,
        { cause: err, details: { graphId, jobId, lastStatus: last?.status } });
    }
    polls += 1;
    const elapsedMs = now() - started;
    options.onPoll?.({ job: last, polls, elapsedMs });
    deps.logger.debug({ graphId, jobId, status: last.status, polls, elapsedMs }, 'ges job status');
    const status = last.status.trim();
    if (status === JOB_SUCCESS) return last;
    if (JOB_FAILED.has(status.toLowerCase())) {
      throw new ArchiverError(ErrorCodes.ImportFailed,
        `GES job ${jobId} (${what}) ended with status "${status}"${last.failReason ? `: ${last.failReason}` : ' without a reason'}`,
        { details: { graphId, jobId, lastStatus: status, ...(last.failReason ? { failReason: last.failReason } : {}) } });
    }
    if (elapsedMs + options.pollIntervalMs > options.timeoutMs) {
      throw new ArchiverError(ErrorCodes.ImportFailed,
        `GES job ${jobId} (${what}) had not finished after ${Math.round(elapsedMs / 1000)} s (last status "${status}"); it may still be running: `
        + 'check it in the GES console before importing again, or wait longer with a larger --import-timeout.',
        { details: { graphId, jobId, lastStatus: status, reason: 'timeout', elapsedMs } });
    }
    await sleep(options.pollIntervalMs, options.signal);
  }
}
