import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { RunReport } from '../archive/types.js';
import { ArchiverError, ErrorCodes, toArchiverError, type ErrorCode } from '../errors.js';
import { redactString, type Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import { describeAwsFailure } from '../should-retry.js';

/**
 * Failure alerts: at most one SNS message per run (or per worker invocation and run) with a
 * readable subject and a JSON body a person or a program can act on. Everything that goes in
 * passes through the logger's redaction (URL query strings, inline tokens), and only codes,
 * ids, file names and messages are included, never links, tokens or configuration.
 */
export interface AlertFailure {
  graphId: string;
  backupId: string;
  file?: string;
  code: ErrorCode;
  message: string;
}

export interface AlertInput {
  runId: string;
  failures: AlertFailure[];
  /** Backups the run handled, for the subject's "N of M". */
  backupsTotal?: number;
  /** A failure of the run itself (manifest unreadable...), not of one backup. */
  runError?: { code: ErrorCode; message: string };
  reportKey?: string;
  /** The subject's summary when the derived one does not fit (the restore drill: "restore drill found 2 problems"). */
  summary?: string;
}

export interface AlertBody {
  runId: string;
  source: string;
  summary: string;
  failures: AlertFailure[];
  /** How many failures were left out to keep the message small. */
  omittedFailures?: number;
  runError?: { code: ErrorCode; message: string };
  reportKey?: string;
}

export interface AlertDeps {
  sns?: SNSClient | undefined;
  topicArn?: string | undefined;
  logger: Logger;
  retry?: RetryPolicy;
}

/** SNS: at most 100 printable ASCII characters, no line breaks. */
export const MAX_SUBJECT_CHARS = 100;
const MAX_FAILURES = 50;
const MAX_MESSAGE_CHARS = 1000;
const ALERT_TIMEOUT_MS = 15_000;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

function asciiSubject(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?').replace(/\s+/g, ' ').trim();
  return clip(printable, MAX_SUBJECT_CHARS);
}

function clean(f: AlertFailure): AlertFailure {
  return {
    graphId: f.graphId,
    backupId: f.backupId,
    ...(f.file === undefined ? {} : { file: clip(redactString(f.file), 300) }),
    code: f.code,
    message: clip(redactString(f.message), MAX_MESSAGE_CHARS),
  };
}

/** The failures of a run report: one per failed backup. */
export function failuresOfReport(report: RunReport): AlertInput {
  return {
    runId: report.runId,
    backupsTotal: report.backups.length,
    failures: report.backups.filter((b) => b.status === 'failed').map((b) => ({
      graphId: b.graphId,
      backupId: b.backupId,
      code: b.error?.code ?? ErrorCodes.Internal,
      message: b.error?.message ?? 'failed without an error message',
    })),
    ...(report.reportKey === undefined ? {} : { reportKey: report.reportKey }),
  };
}

function summaryOf(input: AlertInput): string {
  if (input.summary !== undefined) return input.summary;
  if (input.runError) return `run failed: ${input.runError.code}`;
  const backups = new Set(input.failures.map((f) => `${f.graphId}/${f.backupId}`)).size;
  const files = input.failures.filter((f) => f.file !== undefined).length;
  if (files > 0 && files === input.failures.length) {
    return `${files} file${files === 1 ? '' : 's'} of ${backups} backup${backups === 1 ? '' : 's'} failed`;
  }
  const of = input.backupsTotal !== undefined ? ` of ${input.backupsTotal}` : '';
  return `${backups}${of} backup${(input.backupsTotal ?? backups) === 1 ? '' : 's'} failed`;
}

/** Subject and body of the alert for `input` (pure: unit-tested). */
export function buildAlert(input: AlertInput, source: string): { subject: string; body: AlertBody } {
  const summary = summaryOf(input);
  const subject = asciiSubject(`ges-archiver: ${summary} (run ${input.runId})`);
  const failures = input.failures.slice(0, MAX_FAILURES).map(clean);
  const body: AlertBody = {
    runId: input.runId,
    source,
    summary,
    failures,
    ...(input.failures.length > MAX_FAILURES ? { omittedFailures: input.failures.length - MAX_FAILURES } : {}),
    ...(input.runError ? { runError: { code: input.runError.code, message: clip(redactString(input.runError.message), MAX_MESSAGE_CHARS) } } : {}),
    ...(input.reportKey === undefined ? {} : { reportKey: input.reportKey }),
  };
  return { subject, body };
}

function isReport(value: RunReport | AlertInput): value is RunReport {
  return 'backups' in value;
}

/**
 * Publishes one alert when anything failed. Does nothing without a topic (the CLI without
 * ALERT_TOPIC_ARN) or without failures. Never throws: a failed publish is logged (an alert
 * must not turn a partly successful run into a failed invocation). Returns whether it published.
 */
export async function publishRunAlert(deps: AlertDeps, what: RunReport | AlertInput, options: { source: string }): Promise<boolean> {
  const input = isReport(what) ? failuresOfReport(what) : what;
  if (input.failures.length === 0 && input.runError === undefined) return false;
  if (deps.topicArn === undefined || deps.topicArn === '') {
    deps.logger.debug({ runId: input.runId }, 'no alert topic configured; not publishing');
    return false;
  }
  if (deps.sns === undefined) {
    deps.logger.error({ runId: input.runId }, 'alert topic configured but no SNS client; alert not published');
    return false;
  }
  const sns = deps.sns;
  const topicArn = deps.topicArn;
  const { subject, body } = buildAlert(input, options.source);
  // Its own time budget, not the run's signal: alerts matter most when the run was cut short.
  const signal = AbortSignal.timeout(ALERT_TIMEOUT_MS);
  const send = async (): Promise<void> => {
    try {
      await sns.send(new PublishCommand({ TopicArn: topicArn, Subject: subject, Message: JSON.stringify(body, null, 2) }), { abortSignal: signal });
    } catch (err) {
      // Which failures retry: lib/should-retry.ts, the AWS table.
      const { remoteCode, status, retryable } = describeAwsFailure(err);
      throw new ArchiverError(ErrorCodes.Internal, `SNS Publish failed: ${remoteCode}`, {
        cause: err, retryable, details: { status, remoteCode },
      });
    }
  };
  try {
    await (deps.retry ? deps.retry(send, { signal }) : send());
    deps.logger.info({ runId: input.runId, failures: input.failures.length }, 'alert published');
    return true;
  } catch (err) {
    deps.logger.error({ err: toArchiverError(err), runId: input.runId }, 'could not publish the alert');
    return false;
  }
}
