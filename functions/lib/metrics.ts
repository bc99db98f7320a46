import { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import type { Copier } from '../../lib/copy/copier.js';
import type { Logger } from '../../lib/log.js';
import { instrumentCopier } from '../../lib/metrics/copy-metrics.js';
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME, MetricDimensions, type MetricName, type MetricUnit } from '../../lib/metrics/names.js';
import type { MetricsSink } from '../../lib/metrics/sink.js';
import { rootLogger } from './logger.js';
import { STAGE_ENV_VAR } from './metric-names.js';

/**
 * The Lambda side of lib/metrics: Powertools Metrics, which prints CloudWatch embedded metric
 * format (EMF) documents on stdout; the Lambda log agent turns them into metrics, so no
 * PutMetricData call and no extra latency. Default dimensions: `service` (Powertools always
 * adds it) and `Stage`. The shared middy stack flushes once per invocation, on success and
 * on error alike.
 */
export interface LambdaMetricsOptions {
  /** Default: ARCHIVER_STAGE, else `local`. */
  stage?: string;
  /** Receives the library's own warnings. Default: the container's root logger. */
  logger?: Logger;
}

/** The logger the metrics library takes (its own GenericLogger type, from the package we depend on). */
type MetricsLogger = NonNullable<NonNullable<ConstructorParameters<typeof Metrics>[0]>['logger']>;

function adapt(logger: Logger): MetricsLogger {
  const text = (content: unknown[]): string => content.map((c) => (typeof c === 'string' ? c : JSON.stringify(c))).join(' ');
  return {
    debug: (...c: unknown[]) => logger.debug({ detail: text(c) }, 'metrics library message'),
    info: (...c: unknown[]) => logger.info({ detail: text(c) }, 'metrics library message'),
    warn: (...c: unknown[]) => logger.warn({ detail: text(c) }, 'metrics library warning'),
    error: (...c: unknown[]) => logger.error({ detail: text(c) }, 'metrics library error'),
  };
}

export function createLambdaMetrics(options: LambdaMetricsOptions = {}): Metrics {
  const stage = options.stage ?? (process.env[STAGE_ENV_VAR] || 'local');
  return new Metrics({
    namespace: METRIC_NAMESPACE,
    serviceName: METRIC_SERVICE_NAME,
    defaultDimensions: { [MetricDimensions.Stage]: stage },
    logger: adapt(options.logger ?? rootLogger),
  });
}

let container: Metrics | undefined;

/** The container's Metrics, created on first use (after the environment is in place). */
export function containerMetrics(): Metrics {
  container ??= createLambdaMetrics();
  return container;
}

/** lib/metrics' sink over a Powertools Metrics instance. */
export function metricsSink(metrics: Metrics): MetricsSink {
  return {
    add(name: MetricName, unit: MetricUnit, value: number) {
      metrics.addMetric(name, unit, value);
    },
    addWithDimensions(name: MetricName, unit: MetricUnit, value: number, dimensions: Readonly<Record<string, string>>) {
      // A separate EMF document: one document has one dimension set for all its metrics.
      const single = metrics.singleMetric();
      for (const [k, v] of Object.entries(dimensions)) single.addDimension(k, v);
      single.addMetric(name, unit, value);
    },
  };
}

/**
 * Flushes the invocation's metrics after the handler, whether it returned or threw. (Like
 * Powertools' `logMetrics` middleware, but silent for an invocation that recorded nothing,
 * where logMetrics would warn on every call.) A flush failure is logged, never thrown: metrics
 * must not fail an invocation.
 */
export function flushMetrics(metrics: Metrics, logger: Logger = rootLogger): MiddlewareObj {
  const flush = (): void => {
    try {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    } catch (err) {
      logger.error({ err }, 'could not publish metrics');
    }
  };
  return { after: flush, onError: flush };
}

/** `runtime` with its copier instrumented: every copy's outcome (files, bytes, refreshes, resumes...) goes to `sink`. */
export function withCopyMetrics<R extends { copier: Copier }>(runtime: R, sink: MetricsSink): R {
  return { ...runtime, copier: instrumentCopier(runtime.copier, sink) };
}
