import * as z from 'zod';
import { idSchema } from '../lib/archive/run-manifest.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { parseDuration } from '../lib/prune/duration.js';
import { runScheduledPrune } from '../lib/prune/scheduled.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { getPruneRuntime } from './lib/prune-runtime.js';

// The schedule sends { "source": "ges-archiver.prune" }; by hand, any of keepLast, keepWithin,
// graphId and dryRun override the params (`{ "dryRun": true }` shows what the schedule would delete).
const PruneEvent = z.strictObject({
  source: z.string().max(100).optional(),
  keepLast: z.number().int().min(1).optional(),
  keepWithin: z.string().max(32).optional(),
  graphId: idSchema('graphId').optional(),
  dryRun: z.boolean().optional(),
});

/** EventBridge Scheduler (or by hand) → prune the archive by the retention params; alert on what could not be deleted. */
async function scheduledPrune(event: unknown, _context: unknown, { signal, logger }: InvocationTools) {
  const input = parseEvent(PruneEvent, event ?? {});
  const runtime = getPruneRuntime({ logger });
  const keepLast = input.keepLast ?? runtime.keepLast;
  if (keepLast === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'No retention: set the pruneKeepLast param (PRUNE_KEEP_LAST) or pass keepLast in the event; nothing is deleted by default');
  }
  const keepWithin = input.keepWithin ?? runtime.keepWithin;
  const { pruneId, report, alerted } = await runScheduledPrune(runtime, {
    keepLast,
    ...(keepWithin === undefined ? {} : { keepWithin, keepWithinMs: parseDuration(keepWithin, 'keepWithin') }),
    graphId: input.graphId,
    dryRun: input.dryRun,
    signal,
  });
  return {
    pruneId, alerted, dryRun: report.dryRun, keepLast, keepWithin,
    kept: report.kept.length, deleted: report.deleted.length, locked: report.locked.length, failed: report.failed.length,
    runReports: report.runReports,
    // Bounded: the invocation's response (6 MB at most) must not grow with the archive.
    firstDeleted: report.deleted.slice(0, 20).map((d) => ({ graphId: d.graphId, backupId: d.backupId })),
    firstProblems: [...report.locked, ...report.failed].slice(0, 20).map((p) => ({ graphId: p.graphId, backupId: p.backupId, code: p.code })),
  };
}

export const handler = withLambdaStack(scheduledPrune, { name: 'scheduledPrune' });
