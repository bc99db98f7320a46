import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import { ArchiverError, ErrorCodes } from '../errors.js';
import type { RetryPolicy } from '../retry.js';
import { describeAwsFailure } from '../should-retry.js';

/**
 * SQS calls with the archiver's one retry policy (the SDK client has maxAttempts 1); which
 * failures retry is lib/should-retry.ts's AWS table.
 */
export function sqsError(action: string, err: unknown): ArchiverError {
  if (err instanceof ArchiverError) return err;
  const { remoteCode, status, retryable } = describeAwsFailure(err);
  return new ArchiverError(ErrorCodes.QueueFailed, `SQS ${action} failed: ${remoteCode}`, { cause: err, retryable, details: { operation: `SQS ${action}`, remoteCode, status } });
}

interface Deps {
  sqs: SQSClient;
  retry: RetryPolicy;
}

/** `delaySeconds`: the message becomes visible that much later (0 to 900). */
export async function sendMessage(deps: Deps, queueUrl: string, body: string, signal?: AbortSignal, delaySeconds?: number): Promise<void> {
  await deps.retry(async () => {
    try {
      await deps.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, DelaySeconds: delaySeconds }), { abortSignal: signal });
    } catch (err) {
      throw sqsError('SendMessage', err);
    }
  }, { signal });
}

export interface BatchOutcome {
  /** Indexes into `bodies` that could not be sent, with the reason. */
  failed: Map<number, ArchiverError>;
}

const BATCH = 10; // SQS's limit per SendMessageBatch
const MAX_ROUNDS = 4;

/**
 * Sends bodies in batches of 10, `concurrency` batches at once. A batch that partly fails is
 * sent again with only its failed entries (sender faults are final: the message is wrong).
 */
export async function sendMessages(deps: Deps, queueUrl: string, bodies: string[], options: { signal?: AbortSignal; concurrency?: number } = {}): Promise<BatchOutcome> {
  const failed = new Map<number, ArchiverError>();
  const limit = pLimit(options.concurrency ?? 4);
  const batches: number[][] = [];
  for (let i = 0; i < bodies.length; i += BATCH) batches.push(bodies.slice(i, i + BATCH).map((_, j) => i + j));

  await Promise.all(batches.map((indexes) => limit(async () => {
    let pending = indexes;
    for (let round = 1; pending.length > 0; round++) {
      let res;
      try {
        res = await deps.retry(async () => {
          try {
            return await deps.sqs.send(new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: pending.map((i) => ({ Id: String(i), MessageBody: bodies[i]! })),
            }), { abortSignal: options.signal });
          } catch (err) {
            throw sqsError('SendMessageBatch', err);
          }
        }, { signal: options.signal });
      } catch (err) {
        for (const i of pending) failed.set(i, sqsError('SendMessageBatch', err));
        return;
      }
      const retry: number[] = [];
      for (const f of res.Failed ?? []) {
        const i = Number(f.Id);
        const error = new ArchiverError(ErrorCodes.QueueFailed, `SQS refused a copy message: ${f.Code ?? 'unknown'}`, {
          retryable: f.SenderFault !== true, details: { code: f.Code },
        });
        if (f.SenderFault === true || round >= MAX_ROUNDS) failed.set(i, error);
        else retry.push(i);
      }
      if (retry.length > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** round));
      pending = retry;
    }
  })));
  return { failed };
}
