import { runScheduled, type RunReport } from '../lib/archive/index.js';
import { recordArchiveFreshness, recordRunMetrics, recordScheduledRunOutcome } from '../lib/metrics/index.js';
import { withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { withCopyMetrics } from './lib/metrics.js';
import { getRuntime } from './lib/runtime.js';

/**
 * EventBridge Scheduler → one run of the manifest (MANIFEST_URI). The event carries nothing we
 * use. Metrics: the copies, the run's outcome, ScheduledRunSucceeded (0 when the run failed or
 * threw) and the age of each graph's newest archived backup (one listing after the run).
 */
async function scheduledRun(_event: unknown, _context: unknown, { signal, logger, metrics }: InvocationTools) {
  let report: RunReport | undefined;
  try {
    const runtime = withCopyMetrics(await getRuntime({ logger }), metrics);
    report = await runScheduled(runtime, { signal });
    recordRunMetrics(metrics, report);
    await recordArchiveFreshness(runtime, metrics, { signal });
    return report;
  } finally {
    recordScheduledRunOutcome(metrics, report);
  }
}

export const handler = withLambdaStack(scheduledRun, { name: 'scheduledRun' });
