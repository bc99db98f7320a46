import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { RetryPolicy } from '../retry.js';
import { sqsError } from './sqs.js';

/**
 * When a failed copy message comes back. The queue's visibility timeout covers a whole invocation
 * (serverless.yml: 6 x the worker's timeout, 90 minutes); left alone, every retry of a failed copy
 * would wait that long (about 6 hours to the dead-letter queue) and the queue-age alarm would fire
 * on each. The worker instead makes a failed message visible again after a backoff that doubles
 * with each delivery: base, 2 x base, 4 x base... up to max, with equal jitter (half fixed, half
 * random) so that messages failed together do not all come back together.
 */
export interface RetryVisibility {
  /** Delay after the first failed delivery, in seconds. */
  baseSeconds: number;
  /** Cap of one delay, in seconds (SQS allows up to 12 hours). */
  maxSeconds: number;
}

export const DEFAULT_RETRY_VISIBILITY: Readonly<RetryVisibility> = Object.freeze({ baseSeconds: 60, maxSeconds: 900 });

/** Seconds until a message that failed on its `receiveCount`-th delivery is delivered again. */
export function retryVisibilitySeconds(receiveCount: number, options: RetryVisibility = DEFAULT_RETRY_VISIBILITY, random: () => number = Math.random): number {
  const full = Math.min(options.maxSeconds, options.baseSeconds * 2 ** Math.max(0, receiveCount - 1));
  return Math.round(full / 2 + random() * (full / 2));
}

/** ChangeMessageVisibility with the archiver's retry policy. */
export async function changeVisibility(deps: { sqs: SQSClient; retry: RetryPolicy }, queueUrl: string, receiptHandle: string, seconds: number, signal?: AbortSignal): Promise<void> {
  await deps.retry(async () => {
    try {
      await deps.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }), { abortSignal: signal });
    } catch (err) {
      throw sqsError('ChangeMessageVisibility', err);
    }
  }, { signal });
}
