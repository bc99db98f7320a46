import { ErrorCodes, failureOf } from '../errors.js';
import { checkDrillBackup, type DrillCheckDeps, type DrillCheckOptions, type DrillCheckStatus } from './check-backup.js';
import { parseDrillMessage } from './messages.js';

/** One SQS record as Lambda delivers it (only what the drill worker reads). */
export interface DrillRecord {
  messageId: string;
  body: string;
}

export interface DrillBatchResult {
  /** Lambda's ReportBatchItemFailures answer: these messages come back (then go to the drill DLQ). */
  batchItemFailures: { itemIdentifier: string }[];
}

export interface DrillBatchOptions extends DrillCheckOptions {
  /** Told each record's outcome (the handler's log, tests). */
  onOutcome?: ((messageId: string, outcome: DrillCheckStatus | 'failed') => void) | undefined;
}

/**
 * The drill worker: each record is one drill message (lib/drill/messages.ts), checked one after
 * the other. A message that is not a valid drill message is refused (MESSAGE_INVALID, naming the
 * field; logged, never echoed) and reported failed, like one whose check threw (S3 failing,
 * the invocation ending): SQS delivers it again, and after the queue's maxReceiveCount it lands
 * in the drill dead-letter queue, whose alarm tells the operator.
 */
export async function handleDrillMessages(deps: DrillCheckDeps, records: readonly DrillRecord[], options: DrillBatchOptions = {}): Promise<DrillBatchResult> {
  const failed: string[] = [];
  for (const record of records) {
    const log = deps.logger.child({ messageId: record.messageId });
    let outcome: DrillCheckStatus | 'failed';
    try {
      const message = parseDrillMessage(record.body);
      outcome = (await checkDrillBackup({ ...deps, logger: log }, message, options)).status;
    } catch (err) {
      const e = failureOf(err, options.signal);
      log.error({ err: e, code: e.code }, e.code === ErrorCodes.MessageInvalid
        ? 'drill message refused; it ends in the drill dead-letter queue'
        : 'drill message failed; SQS delivers it again');
      outcome = 'failed';
      failed.push(record.messageId);
    }
    options.onOutcome?.(record.messageId, outcome);
  }
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}
