import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { ErrorCodes } from '../lib/errors.js';
import { handleDrillMessages } from '../lib/drill/worker.js';
import { getDrillRuntime } from './lib/drill-runtime.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';

// The SQS envelope only; each body is validated by lib/drill, which reports a bad or unfinished
// message in batchItemFailures (ReportBatchItemFailures) instead of failing the batch.
const SqsEnvelope = z.looseObject({
  Records: z.array(z.looseObject({ messageId: z.string().min(1), body: z.string() })).min(1),
});

/** SQS (the drill queue) → check one archived backup against its manifest.json; hand over near the deadline. */
async function drillWorker(event: unknown, _context: Context, { signal, deadline, logger, metrics }: InvocationTools) {
  const { Records } = parseEvent(SqsEnvelope, event, { code: ErrorCodes.MessageInvalid, what: 'SQS event' });
  const runtime = getDrillRuntime({ logger });
  return handleDrillMessages({ ...runtime, metrics }, Records, { signal, deadline });
}

export const handler = withLambdaStack(drillWorker, { name: 'drillWorker' });
