import { DEADLINE_MARGINS } from '../deadline.js';
import type { SQSClient } from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import { readArchiveManifest } from '../catalog/read-manifest.js';
import { scanArchive } from '../catalog/scan.js';
import type { StorageDeps } from '../catalog/types.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { sendMessage } from '../fanout/sqs.js';
import { MetricNames, MetricUnits } from '../metrics/names.js';
import type { MetricsSink } from '../metrics/sink.js';
import { chooseSample, seededRandom } from '../verify/sample.js';
import type { VerifyProblem } from '../verify/types.js';
import { backupChecks, contentProblem, listingProblem, sha256SumsProblem } from '../verify/verify.js';
import { publishDrillAlert, type DrillAlertDeps } from './alert.js';
import { serializeDrillMessage, type DrillMessage } from './messages.js';

/** What checking one backup needs: the bucket (list, get), the alert topic, the drill queue for a continuation. */
export interface DrillCheckDeps extends StorageDeps, DrillAlertDeps {
  metrics: MetricsSink;
  sqs: SQSClient;
  /** DRILL_QUEUE_URL: where a continuation goes. */
  queueUrl: string;
}

export interface DrillCheckOptions {
  signal?: AbortSignal | undefined;
  /** Epoch ms when the invocation ends (Lambda: now + getRemainingTimeInMillis()). Without it a backup never hands over. */
  deadline?: number | undefined;
  /**
   * The check hands over this long before `deadline`: files in flight are abandoned (checked again
   * by the continuation) and the continuation is sent. Default 30 s.
   */
  handoverMarginMs?: number | undefined;
  /** Objects read at once (default 4). Memory is about this × one stream buffer (~64 KiB). */
  concurrency?: number | undefined;
  /** The clock the handover decision reads before starting each file (tests); default Date.now. */
  now?: (() => number) | undefined;
}

/**
 * `verified`: every sampled file was checked (by this invocation or the chain before it).
 * `handed-over`: the rest went to a continuation message. `not-archived`: the backup has no
 * manifest.json any more (pruned since the drill chose it): nothing to check. `gave-up`: a file
 * could not be hashed within an invocation, alerted (HANDOVER_LIMIT).
 */
export type DrillCheckStatus = 'verified' | 'handed-over' | 'not-archived' | 'gave-up';

export interface DrillCheckResult {
  status: DrillCheckStatus;
  /** Files re-read and hashed by this invocation. */
  checked: number;
  /** Problems this invocation found (and alerted). */
  problems: VerifyProblem[];
  /** For `handed-over`: the continuation's `from`. */
  next?: number;
}

const DEFAULT_CONCURRENCY = 4;
/** Sending the continuation gets its own time: the invocation's signal may fire meanwhile (lib/deadline.ts). */
const CONTINUATION_SEND_MS = DEADLINE_MARGINS.handoverSaveMs;
/**
 * Invocations in a row that finish no file: the file at the front is too big to hash in one
 * (~80 GB at ~100 MB/s in 15 minutes); the chain stops with an alert instead of going round forever.
 */
export const DRILL_STALLED_HOPS_LIMIT = 2;

/**
 * Checks one archived backup against its manifest.json (one drill message). The first invocation
 * of a chain runs the listing checks (every file present with its recorded size, nothing extra,
 * SHA256SUMS agreeing with manifest.json); every invocation re-reads and hashes sampled files, in
 * the order the message's seed fixes, until the deadline nears; then the rest is handed over to a
 * continuation message on the drill queue, so a backup too big for one invocation never fails
 * silently. Problems found are alerted at once (one alert per invocation) and recorded as
 * DrillProblems; DrillFilesChecked counts the files hashed, DrillBackupsVerified the backups whose
 * chain ended. S3 failures and cancellation throw: SQS delivers the message again.
 */
export async function checkDrillBackup(deps: DrillCheckDeps, message: DrillMessage, options: DrillCheckOptions = {}): Promise<DrillCheckResult> {
  const { graphId, backupId, drillId } = message;
  const log = deps.logger.child({ drillId, graphId, backupId, hop: message.hop ?? 0 });
  const { signal } = options;
  const [folder] = await scanArchive(deps, { graphId, backupId, signal });
  if (folder === undefined || !folder.archived) {
    log.info({}, 'backup is no longer archived (pruned since the drill chose it?): nothing to check');
    return { status: 'not-archived', checked: 0, problems: [] };
  }
  const read = await readArchiveManifest(deps, folder, signal);
  const { checks, problems: found } = backupChecks(folder, read);
  const listing = checks.map(listingProblem);
  const firstHop = (message.hop ?? 0) === 0;
  const problems: VerifyProblem[] = [];
  if (firstHop) {
    problems.push(...found, ...listing.filter((p) => p !== undefined));
    const sums = read.ok ? await sha256SumsProblem(deps, folder, read.manifest, signal) : undefined;
    if (sums) problems.push(sums);
  }

  // The same seed picks the same files in every invocation of the chain; `from` is a position in them.
  const order = [...chooseSample(checks.length, message.samplePercent, seededRandom(message.seed))].sort((a, b) => a - b);
  const from = Math.min(message.from ?? 0, order.length);
  const done = order.map((_, pos) => pos < from || listing[order[pos]!] !== undefined);
  if (!firstHop) {
    // A file still to check that the listing now condemns (deleted or cut since the first hop) is
    // reported here; one the first hop already reported is reported again rather than not at all.
    for (let pos = from; pos < order.length; pos++) {
      const problem = listing[order[pos]!];
      if (problem) problems.push(problem);
    }
  }
  const now = options.now ?? Date.now;
  const handoverAt = options.deadline === undefined ? undefined : options.deadline - (options.handoverMarginMs ?? DEADLINE_MARGINS.drillHandoverMs);
  const handover = new AbortController();
  const timer = handoverAt === undefined ? undefined : setTimeout(() => handover.abort(), Math.max(0, handoverAt - Date.now()));
  timer?.unref();
  const readSignal = signal === undefined ? handover.signal : AbortSignal.any([signal, handover.signal]);
  const limit = pLimit(options.concurrency ?? DEFAULT_CONCURRENCY);
  let checked = 0;
  try {
    await Promise.all(order.map((index, pos) => (done[pos] ? Promise.resolve() : limit(async () => {
      if (handover.signal.aborted || (handoverAt !== undefined && now() >= handoverAt)) {
        handover.abort();
        return;
      }
      try {
        const problem = await contentProblem(deps, checks[index]!, { signal: readSignal });
        if (problem) problems.push(problem);
        checked += 1;
        done[pos] = true;
      } catch (err) {
        // Abandoned at the handover: the continuation checks this file again.
        if (handover.signal.aborted && signal?.aborted !== true) return;
        throw err;
      }
    }))));
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }

  const next = done.indexOf(false);
  const finished = next < 0;
  deps.metrics.add(MetricNames.DrillFilesChecked, MetricUnits.Count, checked);
  deps.metrics.add(MetricNames.DrillProblems, MetricUnits.Count, problems.length);
  if (finished) deps.metrics.add(MetricNames.DrillBackupsVerified, MetricUnits.Count, 1);
  problems.sort((a, b) => a.key.localeCompare(b.key) || a.kind.localeCompare(b.kind));

  if (finished) {
    await publishDrillAlert({ ...deps, logger: log }, drillId, problems, 1);
    log.info({ files: checks.length, sampled: order.length, checked, problems: problems.length }, 'drilled backup verified');
    return { status: 'verified', checked, problems };
  }
  const stalledHops = checked === 0 ? (message.stalledHops ?? 0) + 1 : 0;
  if (stalledHops >= DRILL_STALLED_HOPS_LIMIT) {
    const file = checks[order[next]!]!.file;
    const gaveUp = new ArchiverError(ErrorCodes.HandoverLimit, `${file.key} (${file.bytes} bytes) could not be hashed within one invocation, ${stalledHops} times in a row; check this backup with \`ges-archiver verify --graph ${graphId} --backup ${backupId}\`, which has no time limit`);
    await publishDrillAlert({ ...deps, logger: log }, drillId, problems, 1, [{ graphId, backupId, file: file.name, code: gaveUp.code, message: gaveUp.message }]);
    log.error({ err: gaveUp, key: file.key }, 'restore drill gave up on a backup');
    return { status: 'gave-up', checked, problems };
  }
  const continuation: DrillMessage = { ...message, from: next, hop: (message.hop ?? 0) + 1, stalledHops };
  await sendMessage(deps, deps.queueUrl, serializeDrillMessage(continuation), AbortSignal.timeout(CONTINUATION_SEND_MS));
  await publishDrillAlert({ ...deps, logger: log }, drillId, problems, 1);
  log.info({ checked, next, remaining: done.filter((d) => !d).length, stalledHops }, 'drilled backup handed over to a continuation');
  return { status: 'handed-over', checked, problems, next };
}
