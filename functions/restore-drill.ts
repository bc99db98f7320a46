import * as z from 'zod';
import { planRestoreDrill } from '../lib/drill/plan.js';
import { byteBudgetSchema, getDrillRuntime, samplePercentSchema } from './lib/drill-runtime.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';

// The schedule sends { "source": "ges-archiver.drill" }; by hand, `{ "byteBudget": "500G" }` or
// `{ "samplePercent": 10 }` replace DRILL_BYTE_BUDGET / DRILL_SAMPLE_PERCENT for this drill.
const DrillEvent = z.strictObject({
  source: z.string().max(100).optional(),
  samplePercent: samplePercentSchema.optional(),
  byteBudget: byteBudgetSchema.optional(),
});

/** EventBridge Scheduler (or by hand) → choose the newest backups within the byte budget and queue one drill message each. */
async function restoreDrill(event: unknown, _context: unknown, { signal, logger }: InvocationTools) {
  const { samplePercent, byteBudget } = parseEvent(DrillEvent, event ?? {});
  const runtime = getDrillRuntime({ logger });
  const plan = await planRestoreDrill(runtime, {
    samplePercent: samplePercent ?? runtime.samplePercent, byteBudget: byteBudget ?? runtime.byteBudget, signal,
  });
  return {
    ...plan,
    // Bounded: the invocation's response (6 MB at most) must not grow with the archive.
    queued: plan.queued.slice(0, 100).map((b) => ({ graphId: b.graphId, backupId: b.backupId, completedAt: b.completedAt, bytes: b.bytes })),
    queuedCount: plan.queued.length,
  };
}

export const handler = withLambdaStack(restoreDrill, { name: 'restoreDrill' });
