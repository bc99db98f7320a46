// What the Lambda functions print: CloudWatch embedded metric format (EMF) documents on stdout,
// written by Powertools through the shared middy stack. Asserted as the JSON CloudWatch reads.
import type { Context } from 'aws-lambda';
import type { RunReport } from '../../lib/archive/types.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { MetricNames, MetricUnits, recordRunMetrics, recordScheduledRunOutcome } from '../../lib/metrics/index.js';
import { createLambdaMetrics } from '../../functions/lib/metrics.js';
import {
  METRIC_DIMENSION_SERVICE, METRIC_DIMENSION_STAGE, METRIC_NAMESPACE, METRIC_SCHEDULED_RUN_SUCCEEDED, METRIC_SERVICE_NAME, STAGE_ENV_VAR,
} from '../../functions/lib/metric-names.js';
import { withLambdaStack } from '../../functions/lib/middleware.js';

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [key: string]: unknown;
}

/** Runs `fn` with process.stdout.write captured; returns the EMF documents printed. */
async function captureEmf(fn: () => Promise<unknown>): Promise<Emf[]> {
  const lines: string[] = [];
  const stdout = process.stdout;
  const original = Object.getOwnPropertyDescriptor(stdout, 'write');
  Object.defineProperty(stdout, 'write', {
    configurable: true,
    writable: true,
    value: (chunk: string | Uint8Array): boolean => {
      lines.push(...String(chunk).split('\n').filter((l) => l.trim() !== ''));
      return true;
    },
  });
  try {
    await fn().catch(() => undefined);
  } finally {
    if (original) Object.defineProperty(stdout, 'write', original);
    else delete (stdout as { write?: unknown }).write;
  }
  return lines.filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Emf);
}

function context(): Context {
  const deadline = Date.now() + 60_000;
  return { functionName: 'ges-archiver-dev-fn', awsRequestId: 'req-1', getRemainingTimeInMillis: () => deadline - Date.now() } as unknown as Context;
}

const report: RunReport = {
  runId: 'r1', trigger: 'schedule', dryRun: false, startedAt: '', finishedAt: '', durationMs: 1234,
  backups: [
    { graphId: 'g1', backupId: 'b1', status: 'archived', files: 2, bytes: 3000 },
    { graphId: 'g1', backupId: 'b2', status: 'failed', files: 0, bytes: 0, error: { code: ErrorCodes.DownloadFailed, message: 'x' } },
  ],
  totals: { archived: 1, skipped: 0, failed: 1, planned: 0, queued: 0, cancelled: 0, files: 2, bytes: 3000 },
};

describe('EMF printed by a function on the shared stack', () => {
  beforeAll(() => {
    delete process.env['POWERTOOLS_DEV'];
    delete process.env['POWERTOOLS_METRICS_DISABLED'];
  });

  it('prints one document per invocation: namespace GesArchiver, dimensions service + Stage, every metric with its unit and value', async () => {
    // Prepare
    const metrics = createLambdaMetrics({ stage: 'dev', logger: silentLogger() });
    const handler = withLambdaStack((_e: unknown, _c, tools) => {
      recordRunMetrics(tools.metrics, report);
      recordScheduledRunOutcome(tools.metrics, report);
      return Promise.resolve('done');
    }, { name: 'fn', logger: silentLogger(), metrics });

    // Act
    const docs = await captureEmf(() => handler({}, context()));

    // Assess
    expect(docs).toHaveLength(1);
    const doc = docs[0]!;
    const [directive] = doc._aws.CloudWatchMetrics;
    expect(directive!.Namespace).toBe(METRIC_NAMESPACE);
    expect(directive!.Dimensions).toEqual([[METRIC_DIMENSION_SERVICE, METRIC_DIMENSION_STAGE]]);
    expect(doc[METRIC_DIMENSION_SERVICE]).toBe(METRIC_SERVICE_NAME);
    expect(doc[METRIC_DIMENSION_STAGE]).toBe('dev');
    expect(directive!.Metrics).toEqual(expect.arrayContaining([
      { Name: MetricNames.BackupsArchived, Unit: 'Count' },
      { Name: MetricNames.BackupsFailed, Unit: 'Count' },
      { Name: MetricNames.RunDuration, Unit: 'Milliseconds' },
      { Name: METRIC_SCHEDULED_RUN_SUCCEEDED, Unit: 'Count' },
    ]));
    expect(doc[MetricNames.BackupsArchived]).toBe(1);
    expect(doc[MetricNames.BackupsFailed]).toBe(1);
    expect(doc[MetricNames.RunDuration]).toBe(1234);
    // A backup failed: the freshness alarm's metric says 0.
    expect(doc[METRIC_SCHEDULED_RUN_SUCCEEDED]).toBe(0);
    expect(Math.abs(doc._aws.Timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('prints a datapoint with extra dimensions as its own document (NewestBackupAgeHours per Graph)', async () => {
    const metrics = createLambdaMetrics({ stage: 'prod', logger: silentLogger() });
    const handler = withLambdaStack((_e: unknown, _c, tools) => {
      tools.metrics.addWithDimensions(MetricNames.NewestBackupAgeHours, MetricUnits.None, 12.5, { Graph: 'g1' });
      tools.metrics.addWithDimensions(MetricNames.NewestBackupAgeHours, MetricUnits.None, 30, { Graph: 'g2' });
      return Promise.resolve('done');
    }, { name: 'fn', logger: silentLogger(), metrics });

    const docs = await captureEmf(() => handler({}, context()));

    expect(docs.map((d) => [d['Graph'], d[MetricNames.NewestBackupAgeHours], d['Stage']])).toEqual([['g1', 12.5, 'prod'], ['g2', 30, 'prod']]);
    for (const d of docs) {
      expect(d._aws.CloudWatchMetrics[0]!.Namespace).toBe(METRIC_NAMESPACE);
      expect(d._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([[METRIC_DIMENSION_SERVICE, METRIC_DIMENSION_STAGE, 'Graph']]);
      expect(d._aws.CloudWatchMetrics[0]!.Metrics).toEqual([{ Name: MetricNames.NewestBackupAgeHours, Unit: 'None' }]);
    }
  });

  it('flushes when the handler throws, and prints nothing for an invocation that recorded nothing', async () => {
    const metrics = createLambdaMetrics({ stage: 'dev', logger: silentLogger() });
    const failing = withLambdaStack((_e: unknown, _c, tools) => {
      tools.metrics.add(MetricNames.FilesFailed, MetricUnits.Count, 1);
      return Promise.reject(new Error('boom'));
    }, { name: 'fn', logger: silentLogger(), metrics });
    const quiet = withLambdaStack(() => Promise.resolve('nothing'), { name: 'fn', logger: silentLogger(), metrics });

    const docs = await captureEmf(async () => {
      await failing({}, context()).catch(() => undefined);
      await quiet({}, context());
    });

    expect(docs).toHaveLength(1);
    expect(docs[0]![MetricNames.FilesFailed]).toBe(1);
  });

  it('the real scheduledRun handler puts ScheduledRunSucceeded = 0 with the stage from ARCHIVER_STAGE when the run cannot start', async () => {
    // Prepare: no GES_ENDPOINT etc. in this process, so building the runtime fails (CONFIG_INVALID).
    process.env[STAGE_ENV_VAR] = 'dev';
    const { handler } = await import('../../functions/scheduled-run.js');
    let error: unknown;

    // Act
    const docs = await captureEmf(async () => {
      await handler({ source: 'ges-archiver.schedule' }, context()).catch((err: unknown) => {
        error = err;
      });
    });

    // Assess
    expect(error).toMatchObject({ code: ErrorCodes.ConfigInvalid });
    expect(docs).toHaveLength(1);
    expect(docs[0]!._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: METRIC_NAMESPACE,
      Dimensions: [[METRIC_DIMENSION_SERVICE, METRIC_DIMENSION_STAGE]],
      Metrics: [{ Name: METRIC_SCHEDULED_RUN_SUCCEEDED, Unit: 'Count' }],
    });
    expect(docs[0]).toMatchObject({ service: METRIC_SERVICE_NAME, Stage: 'dev', [METRIC_SCHEDULED_RUN_SUCCEEDED]: 0 });
  });
});
