import { randomInt } from 'node:crypto';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { newRunId } from '../archive/run.js';
import type { StorageDeps } from '../catalog/types.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { sendMessages } from '../fanout/sqs.js';
import { notArchived } from '../verify/verify.js';
import { publishDrillAlert, type DrillAlertDeps } from './alert.js';
import { serializeDrillMessage } from './messages.js';
import { selectDrillBackups, type DrillCandidate } from './select.js';

/** What planning a drill needs: the bucket (listing only), the drill queue and the alert topic. */
export interface DrillPlanDeps extends StorageDeps, DrillAlertDeps {
  sqs: SQSClient;
  /** DRILL_QUEUE_URL: one message per chosen backup goes there. */
  queueUrl: string;
}

export interface DrillPlanOptions {
  /** Bytes the drill may read (DRILL_BYTE_BUDGET). */
  byteBudget: number;
  /** Share of each chosen backup's files hashed (DRILL_SAMPLE_PERCENT). */
  samplePercent: number;
  signal?: AbortSignal | undefined;
  /** Default: a new run id (`20261127T023000Z-1a2b3c4d`). */
  drillId?: string | undefined;
}

export interface DrillPlan {
  drillId: string;
  byteBudget: number;
  samplePercent: number;
  /** Archived backups in the bucket. */
  archived: number;
  /** The backups queued for checking, newest first. */
  queued: DrillCandidate[];
  /** What they cost against the budget. */
  chargedBytes: number;
  /** The newest backup alone is larger than the budget (it is checked all the same). */
  overBudget: boolean;
  /** Whether an alert was published (nothing archived at all). */
  alerted: boolean;
}

/**
 * The scheduled restore drill's first step: one listing of the archive prefix (no object read)
 * finds the archived backups and their completion times; newest first, those that fit in the
 * byte budget (lib/drill/select.ts) each get one message on the drill queue, which a drill worker
 * turns into a check of that backup (lib/drill/check-backup.ts). Nothing archived under the prefix
 * is a problem and alerts (a mistyped ARCHIVE_PREFIX never makes a drill pass). Listing failures,
 * messages SQS would not take and cancellation throw: the invocation fails and its Errors alarm fires.
 */
export async function planRestoreDrill(deps: DrillPlanDeps, options: DrillPlanOptions): Promise<DrillPlan> {
  const drillId = options.drillId ?? newRunId();
  const log = deps.logger.child({ drillId });
  const { byteBudget, samplePercent, signal } = options;
  const selection = await selectDrillBackups(deps, { byteBudget, samplePercent, signal });
  const plan: DrillPlan = {
    drillId, byteBudget, samplePercent, archived: selection.archived, queued: selection.chosen,
    chargedBytes: selection.chargedBytes, overBudget: selection.overBudget, alerted: false,
  };
  if (selection.archived === 0) {
    plan.alerted = await publishDrillAlert({ ...deps, logger: log }, drillId, notArchived(deps, {}, []), 0);
    log.warn({ prefix: deps.config.archive.prefix }, 'restore drill found nothing archived');
    return plan;
  }
  if (selection.overBudget) log.warn({ byteBudget, bytes: selection.chosen[0]?.bytes }, 'the newest backup alone is larger than the drill byte budget; it is checked all the same');

  const bodies = selection.chosen.map((c) => serializeDrillMessage({
    v: 1, type: 'drill-backup', drillId, graphId: c.graphId, backupId: c.backupId, samplePercent, seed: randomInt(0, 0xffff_ffff),
  }));
  const { failed } = await sendMessages(deps, deps.queueUrl, bodies, { signal });
  if (failed.size > 0) {
    const [first] = failed.values();
    throw new ArchiverError(ErrorCodes.QueueFailed, `${failed.size} of ${bodies.length} drill messages could not be queued (${first?.message ?? 'unknown'}); check DRILL_QUEUE_URL and the role's sqs:SendMessage`, {
      cause: first, retryable: first?.retryable ?? true,
    });
  }
  log.info({
    archived: selection.archived, queued: selection.chosen.length, chargedBytes: selection.chargedBytes, byteBudget, samplePercent,
  }, 'restore drill queued');
  return plan;
}
