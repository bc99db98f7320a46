import type { Metrics } from '@aws-lambda-powertools/metrics';
import middy, { type MiddlewareObj, type MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { describeIssues } from '../../lib/config.js';
import { DEADLINE_MARGINS } from '../../lib/deadline.js';
import { ArchiverError, ErrorCodes, toArchiverError, type ErrorCode } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { MetricsSink } from '../../lib/metrics/sink.js';
import { rootLogger } from './logger.js';
import { containerMetrics, flushMetrics, metricsSink } from './metrics.js';

/**
 * The one middy stack every handler is wrapped in (house style: handlers stay short, the
 * Lambda plumbing lives here):
 * - a child logger carrying the function name, the AWS request id and whether this is a cold
 *   start; "invocation started" / "invocation finished" lines with the duration;
 * - an AbortSignal that fires `safetyMarginMs` before the Lambda deadline, so the domain can
 *   stop, clean up (abort multipart uploads, report unfinished SQS messages) and return. Its
 *   reason is an ArchiverError DEADLINE_EXCEEDED;
 * - middy's own early timeout (`hardMarginMs` before the deadline) as the backstop when the
 *   handler does not return in time: it rejects with DEADLINE_EXCEEDED so the failure is logged
 *   rather than the Lambda execution environment killing the process mid-line. (middy's built-in signal alone would
 *   race the handler and discard a graceful result, hence the earlier soft signal.)
 * - errors logged exactly once, with their `code`, then rethrown unchanged;
 * - a metrics sink (Powertools, EMF on stdout) whose datapoints are flushed once at the end
 *   of the invocation, whether the handler returned or threw.
 */
export interface InvocationTools {
  /** Fires `safetyMarginMs` before the deadline (and at the hard backstop). */
  readonly signal: AbortSignal;
  /**
   * Epoch ms when this invocation ends, computed once at its start; undefined outside Lambda
   * (local calls without a deadline). The margins kept before it: lib/deadline.ts.
   */
  readonly deadline: number | undefined;
  /** Child logger with the request context. */
  readonly logger: Logger;
  /** Records CloudWatch metrics; flushed by the stack after the handler. */
  readonly metrics: MetricsSink;
}

export type StackHandler<TEvent, TResult> = (event: TEvent, context: Context, tools: InvocationTools) => Promise<TResult>;

export interface LambdaStackOptions {
  /** The function's name in serverless.yml (scheduledRun, archiveBackup, copyWorker). */
  name: string;
  /** How long before the deadline the signal fires. Default DEADLINE_MARGINS.abortMs. */
  safetyMarginMs?: number;
  /** How long before the deadline middy gives up on the handler. Default DEADLINE_MARGINS.hardStopMs. */
  hardMarginMs?: number;
  /** Parent logger. Default: the container's root logger. */
  logger?: Logger;
  /** Powertools Metrics the handler's datapoints go to. Default: the container's (functions/lib/metrics.ts). */
  metrics?: Metrics;
}

const optionsSchema = z.strictObject({
  name: z.string().min(1),
  safetyMarginMs: z.number().int().min(0).default(DEADLINE_MARGINS.abortMs),
  hardMarginMs: z.number().int().min(0).default(DEADLINE_MARGINS.hardStopMs),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as { child?: unknown }).child === 'function').optional(),
  metrics: z.custom<Metrics>((v) => typeof v === 'object' && v !== null && typeof (v as { publishStoredMetrics?: unknown }).publishStoredMetrics === 'function').optional(),
}).refine((o) => o.hardMarginMs < o.safetyMarginMs || o.safetyMarginMs === 0, {
  message: 'hardMarginMs must be smaller than safetyMarginMs',
  path: ['hardMarginMs'],
});

interface InvocationState {
  logger: Logger;
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  startedAt: number;
  deadline: number | undefined;
}

// Keyed by the Lambda context object, which middy hands unchanged to middlewares and handler.
const invocations = new WeakMap<Context, InvocationState>();
let coldStart = true;

function deadlineError(marginMs: number): ArchiverError {
  return new ArchiverError(ErrorCodes.DeadlineExceeded, 'The Lambda deadline is near; stopping work', {
    retryable: true,
    details: { marginMs },
  });
}

function stopTimer(state: InvocationState | undefined): void {
  if (state?.timer !== undefined) clearTimeout(state.timer);
}

function invocationContext(name: string, parent: Logger, safetyMarginMs: number): MiddlewareObj<unknown, unknown, Error, Context> {
  return {
    before: (request) => {
      const context = request.context;
      const logger = parent.child({
        function: name,
        functionName: context.functionName,
        awsRequestId: context.awsRequestId,
        coldStart,
      });
      coldStart = false;
      const controller = new AbortController();
      // Without getRemainingTimeInMillis (local calls, tests) there is no deadline to watch.
      const remaining = typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : undefined;
      const startedAt = Date.now();
      const state: InvocationState = { logger, controller, timer: undefined, startedAt, deadline: remaining === undefined ? undefined : startedAt + remaining };
      if (remaining !== undefined) {
        const fireIn = remaining - safetyMarginMs;
        if (fireIn <= 0) controller.abort(deadlineError(safetyMarginMs));
        else {
          state.timer = setTimeout(() => controller.abort(deadlineError(safetyMarginMs)), fireIn);
          state.timer.unref();
        }
      }
      invocations.set(context, state);
      logger.info({ remainingTimeMs: remaining }, 'invocation started');
    },
    after: (request) => {
      const state = invocations.get(request.context);
      stopTimer(state);
      state?.logger.info({ durationMs: Date.now() - state.startedAt }, 'invocation finished');
    },
    onError: (request) => {
      const state = invocations.get(request.context);
      stopTimer(state);
      const err = request.error;
      const code: ErrorCode = toArchiverError(err).code;
      (state?.logger ?? parent).error({ err, code, durationMs: state ? Date.now() - state.startedAt : undefined }, 'invocation failed');
      // Returning nothing leaves request.response undefined: middy rethrows the error.
    },
  };
}

/** Wraps a handler in the shared stack. Call once, at the bottom of the handler file. */
export function withLambdaStack<TEvent, TResult>(
  handler: StackHandler<TEvent, TResult>,
  options: LambdaStackOptions,
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `withLambdaStack: ${describeIssues(parsed.error)}`);
  const { name, safetyMarginMs, hardMarginMs } = parsed.data;
  const parent = parsed.data.logger ?? rootLogger;
  const metrics = parsed.data.metrics ?? containerMetrics();
  const sink = metricsSink(metrics);

  const inner = async (event: TEvent, context: Context, opts: { signal: AbortSignal }): Promise<TResult> => {
    const state = invocations.get(context);
    if (state === undefined) throw new ArchiverError(ErrorCodes.Internal, 'withLambdaStack: invocation state missing');
    const signal = AbortSignal.any([state.controller.signal, opts.signal]);
    return handler(event, context, { signal, deadline: state.deadline, logger: state.logger, metrics: sink });
  };

  return middy<TEvent, TResult, Error, Context>(inner, {
    timeoutEarlyInMillis: hardMarginMs,
    timeoutEarlyResponse: () => {
      throw deadlineError(hardMarginMs);
    },
  })
    .use(flushMetrics(metrics, parent))
    .use(invocationContext(name, parent, safetyMarginMs));
}

export interface ParseEventOptions {
  /** ARGS_INVALID for a manual invocation, MESSAGE_INVALID for queue messages. Default ARGS_INVALID. */
  code?: typeof ErrorCodes.ArgsInvalid | typeof ErrorCodes.MessageInvalid;
  /** What is being validated, for the message. Default "event". */
  what?: string;
}

/**
 * Validates an incoming event at the edge. Failure is a 400-like ArchiverError whose message
 * names every offending field (`details.fields`), never a value.
 */
export function parseEvent<S extends z.ZodType>(schema: S, event: unknown, options: ParseEventOptions = {}): z.output<S> {
  const result = schema.safeParse(event);
  if (result.success) return result.data;
  const fields = result.error.issues.map((i) => (i.path.length === 0 ? '(root)' : i.path.map(String).join('.')));
  throw new ArchiverError(options.code ?? ErrorCodes.ArgsInvalid, `Invalid ${options.what ?? 'event'}: ${describeIssues(result.error)}`, {
    details: { statusCode: 400, fields },
  });
}
