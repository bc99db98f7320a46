import { z } from 'zod';
import { runRestoreDrill } from '../lib/verify/drill.js';
import { getDrillRuntime, samplePercentSchema } from './lib/drill-runtime.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';

// The schedule sends { "source": "ges-archiver.drill" }; by hand, `{ "samplePercent": 100 }`
// checks every file once instead of DRILL_SAMPLE_PERCENT of them.
const DrillEvent = z.strictObject({ source: z.string().max(100).optional(), samplePercent: samplePercentSchema.optional() });

/** EventBridge Scheduler (or by hand) → verify a sample of the archive; alert on any problem. */
async function restoreDrill(event: unknown, _context: unknown, { signal, logger, metrics }: InvocationTools) {
  const { samplePercent } = parseEvent(DrillEvent, event ?? {});
  const runtime = getDrillRuntime({ logger });
  const { drillId, report, alerted } = await runRestoreDrill({ ...runtime, metrics }, { samplePercent: samplePercent ?? runtime.samplePercent, signal });
  return {
    drillId, samplePercent: samplePercent ?? runtime.samplePercent, alerted,
    backups: report.backups.length, files: report.files, checked: report.checked, problems: report.problems.length,
    // Bounded: the invocation's response (6 MB at most) must not grow with the archive.
    firstProblems: report.problems.slice(0, 20).map((p) => ({ kind: p.kind, key: p.key })),
  };
}

export const handler = withLambdaStack(restoreDrill, { name: 'restoreDrill' });
