import type { Context } from 'aws-lambda';
import { runScheduled } from '../lib/app/scheduled-run.js';
import type { RunReport } from '../lib/archive/types.js';
import { recordReportFreshness, recordRunMetrics, recordScheduledRunOutcome } from '../lib/metrics/index.js';
import { withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { withCopyMetrics } from './lib/metrics.js';
import { getRuntime } from './lib/runtime.js';

/**
 * EventBridge Scheduler → one run of the manifest (MANIFEST_URI). The event carries nothing we
 * use. Metrics: the copies, the run's outcome, ScheduledRunSucceeded (0 when the run failed or
 * threw) and the age of each planned graph's newest archived backup, from the run report (a run
 * planned per graph leaves that to the copy workers that plan each graph).
 */
async function scheduledRun(_event: unknown, _context: Context, { signal, deadline, logger, metrics }: InvocationTools) {
  let report: RunReport | undefined;
  try {
    const runtime = withCopyMetrics(await getRuntime({ logger }), metrics);
    // The deadline decides between archiving inline and fanning out to the copy queue.
    report = await runScheduled(runtime, { signal, deadline });
    recordRunMetrics(metrics, report);
    recordReportFreshness(metrics, report);
    return report;
  } finally {
    recordScheduledRunOutcome(metrics, report);
  }
}

export const handler = withLambdaStack(scheduledRun, { name: 'scheduledRun' });
