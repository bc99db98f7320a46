import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { handleCopyMessages } from '../lib/fanout/index.js';
import { ErrorCodes } from '../lib/errors.js';
import { recordBackupOutcomes, recordFileArchived, recordReportFreshness } from '../lib/metrics/index.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { withCopyMetrics } from './lib/metrics.js';
import { getRuntime } from './lib/runtime.js';

// The SQS envelope only; each body is validated by lib/fanout, which reports bad or unfinished
// messages in batchItemFailures (ReportBatchItemFailures) instead of failing the batch.
const SqsEnvelope = z.looseObject({
  Records: z.array(z.looseObject({ messageId: z.string().min(1), body: z.string() })).min(1),
});

async function copyWorker(event: unknown, _context: Context, { signal, deadline, logger, metrics }: InvocationTools) {
  const { Records } = parseEvent(SqsEnvelope, event, { code: ErrorCodes.MessageInvalid, what: 'SQS event' });
  const runtime = withCopyMetrics(await getRuntime({ logger }), metrics);
  // The deadline lets a long copy hand over (checkpoint + continuation message) before Lambda
  // stops it, and decides whether a planned graph is copied inline or fanned out.
  return handleCopyMessages(runtime, Records, {
    signal, deadline,
    onGraphReport: (report) => {
      recordBackupOutcomes(metrics, report);
      recordReportFreshness(metrics, report);
    },
    // A range-sharded file counts once, when its hash pass writes its receipt (its shards are not files).
    onFileArchived: (file) => recordFileArchived(metrics, file.bytes),
  });
}

export const handler = withLambdaStack(copyWorker, { name: 'copyWorker' });
