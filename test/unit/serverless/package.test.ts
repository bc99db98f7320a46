// `sls package` (osls, the Serverless Framework v3 line) run once, offline and without AWS
// credentials, into a temporary directory; the tests read the CloudFormation template it
// generates and the bundles it zipped.
//
// The service is packaged from a temporary copy of the repository (serverless-esbuild writes
// .esbuild/ into the service directory, and several people share this checkout).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';
import { readZipEntry } from '../../../scripts/lambda-local/zip.js';
import { validateTemplate, type CfnTemplate } from '../../support/cfn-validate.js';
import { copyService, packageService } from '../../support/sls-package.js';
import {
  METRIC_DIMENSION_SERVICE, METRIC_DIMENSION_STAGE, METRIC_NAMESPACE, METRIC_SCHEDULED_RUN_SUCCEEDED, METRIC_SERVICE_NAME,
} from '../../../functions/lib/metric-names.js';
import { MetricNames } from '../../../lib/metrics/names.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

type Json = Record<string, unknown>;
interface CfnResource { Type: string; Properties: Json; Condition?: string; DependsOn?: unknown }
interface Template { Resources: Record<string, CfnResource>; Conditions: Json }

function prepareServiceCopy(): { dir: string } {
  return { dir: copyService() };
}

let service: { dir: string };
let outDir: string;
let template: Template;
let resources: Record<string, CfnResource>;
/** The same service packaged with every optional feature on (the branches the defaults switch off). */
let templateAllOn: Template;

/** Every optional param set: its resources, statements and Fn::If branches are the ones deployed. */
const ALL_ON_PARAMS = [
  'messagingKmsKey=true', 'backupAgeAlarmHours=48', 'coldStorageTransitionDays=30', 'objectLockRetentionDays=30',
  'kmsKeyArn=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab', 'alertEmail=ops@example.com',
  'manifestUri=s3://config-bucket/ges/manifest.json', 'pruneKeepLast=7', 'pruneScheduleEnabled=true',
];

beforeAll(() => {
  service = prepareServiceCopy();
  outDir = join(service.dir, '.package');
  const slsPackage = (dir: string, params: string[]) => packageService(service.dir, dir, params);
  slsPackage(outDir, []);
  template = JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
  resources = template.Resources;
  const allOnDir = join(service.dir, '.package-all-on');
  slsPackage(allOnDir, ALL_ON_PARAMS);
  templateAllOn = JSON.parse(readFileSync(join(allOnDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
}, 240_000);

afterAll(() => {
  if (service) rmSync(service.dir, { recursive: true, force: true });
});

function resource(logicalId: string, type: string): CfnResource {
  const r = resources[logicalId];
  expect(r).toBeDefined();
  expect(r!.Type).toBe(type);
  return r!;
}

function ofType(type: string): Array<[string, CfnResource]> {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

const FUNCTIONS = {
  scheduledRun: { logicalId: 'ScheduledRunLambdaFunction', file: 'functions/scheduled-run.mjs', role: 'ScheduledRunRole' },
  archiveBackup: { logicalId: 'ArchiveBackupLambdaFunction', file: 'functions/archive-backup.mjs', role: 'ArchiveBackupRole' },
  copyWorker: { logicalId: 'CopyWorkerLambdaFunction', file: 'functions/copy-worker.mjs', role: 'CopyWorkerRole' },
} as const;

describe('functions', () => {
  it.each(Object.entries(FUNCTIONS))('%s runs on nodejs22.x arm64 with a chosen memory size and timeout, in its own role', (name, f) => {
    const props = resource(f.logicalId, 'AWS::Lambda::Function').Properties;
    expect(props['FunctionName']).toBe(`ges-archiver-dev-${name}`);
    expect(props['Runtime']).toBe('nodejs22.x');
    expect(props['Architectures']).toEqual(['arm64']);
    expect(props['Handler']).toBe(f.file.replace('.mjs', '.handler'));
    expect(props['Timeout']).toBe(900);
    expect(props['MemorySize']).toBeGreaterThanOrEqual(1024);
    expect(props['Role']).toEqual({ 'Fn::GetAtt': [f.role, 'Arn'] });
  });

  it.each(Object.entries(FUNCTIONS))('%s gets the CONTRACT environment and source maps', (_name, f) => {
    const vars = (resource(f.logicalId, 'AWS::Lambda::Function').Properties['Environment'] as { Variables: Json }).Variables;
    expect(vars['ARCHIVE_BUCKET']).toEqual({ Ref: 'ArchiveBucket' });
    expect(vars['ALERT_TOPIC_ARN']).toEqual({ Ref: 'AlertTopic' });
    expect(vars['ARCHIVE_PREFIX']).toBe('ges-backups/');
    expect(vars['GES_ENDPOINT']).toBe('https://ges.cn-north-4.myhuaweicloud.com');
    expect(vars).toHaveProperty('GES_PROJECT_ID');
    expect(vars['DOWNLOAD_ALLOWED_HOSTS']).toBe('*.myhuaweicloud.com,*.myhuaweicloud.eu');
    expect(vars['HWC_SECRET_ID']).toBe('ges-archiver/dev/huawei');
    expect(vars['NODE_OPTIONS']).toBe('--enable-source-maps');
    // Credentials never travel as plain environment variables.
    expect(Object.keys(vars).filter((k) => /TOKEN|PASSWORD/.test(k))).toEqual([]);
  });

  it('gives scheduledRun the manifest and the queue, copyWorker the queue', () => {
    const env = (id: string) => (resources[id]!.Properties['Environment'] as { Variables: Json }).Variables;
    expect(env('ScheduledRunLambdaFunction')['MANIFEST_URI']).toBeDefined();
    expect(env('ScheduledRunLambdaFunction')['COPY_QUEUE_URL']).toEqual({ Ref: 'CopyQueue' });
    expect(env('CopyWorkerLambdaFunction')['COPY_QUEUE_URL']).toEqual({ Ref: 'CopyQueue' });
  });

  it('gives copyWorker ARCHIVE_SHARD_MB from the shardSizeMb param (default 8192)', () => {
    const env = (resources['CopyWorkerLambdaFunction']!.Properties['Environment'] as { Variables: Json }).Variables;
    expect(env['ARCHIVE_SHARD_MB']).toBe('8192');
  });

  it('gives scheduledRun PLAN_PER_GRAPH_MIN_GRAPHS from the planPerGraphMinGraphs param (default 20)', () => {
    const env = (resources['ScheduledRunLambdaFunction']!.Properties['Environment'] as { Variables: Json }).Variables;
    expect(env['PLAN_PER_GRAPH_MIN_GRAPHS']).toBe('20');
  });

  function scheduleOf(fnId: string): Json {
    const schedules = ofType('AWS::Scheduler::Schedule').filter(([, r]) => JSON.stringify((r.Properties['Target'] as Json)['Arn']).includes(`"${fnId}"`));
    expect(schedules).toHaveLength(1);
    return schedules[0]![1].Properties;
  }

  it('triggers scheduledRun with an EventBridge Scheduler schedule in a time zone, through its own role', () => {
    expect(ofType('AWS::Scheduler::Schedule')).toHaveLength(3);
    const props = scheduleOf('ScheduledRunLambdaFunction');
    expect(props['ScheduleExpression']).toMatch(/^(rate|cron)\(.+\)$/);
    expect(props['ScheduleExpressionTimezone']).toBe('UTC');
    expect(props['State']).toBe('ENABLED');
    const target = props['Target'] as Json;
    expect(target['Arn']).toEqual({ 'Fn::GetAtt': ['ScheduledRunLambdaFunction', 'Arn'] });
    expect(target['RoleArn']).toEqual({ 'Fn::GetAtt': ['SchedulerInvokeRole', 'Arn'] });
    expect(ofType('AWS::Events::Rule')).toHaveLength(0);
  });

  it('does not retry failed scheduled or manual runs asynchronously', () => {
    for (const id of ['ScheduledRunLambdaEvConf', 'ArchiveBackupLambdaEvConf', 'RestoreDrillLambdaEvConf', 'ScheduledPruneLambdaEvConf']) {
      expect(resource(id, 'AWS::Lambda::EventInvokeConfig').Properties['MaximumRetryAttempts']).toBe(0);
    }
  });

  /** The event source mapping that reads `queueId`. */
  function mappingOf(queueId: string): Json {
    const mappings = ofType('AWS::Lambda::EventSourceMapping').filter(([, r]) => JSON.stringify(r.Properties['EventSourceArn']) === JSON.stringify({ 'Fn::GetAtt': [queueId, 'Arn'] }));
    expect(mappings).toHaveLength(1);
    return mappings[0]![1].Properties;
  }

  it('feeds copyWorker from the copy queue with partial batch responses, a small batch and bounded concurrency', () => {
    expect(ofType('AWS::Lambda::EventSourceMapping')).toHaveLength(2);
    const props = mappingOf('CopyQueue');
    expect(props['EventSourceArn']).toEqual({ 'Fn::GetAtt': ['CopyQueue', 'Arn'] });
    expect(props['FunctionName']).toEqual({ 'Fn::GetAtt': ['CopyWorkerLambdaFunction', 'Arn'] });
    expect(props['FunctionResponseTypes']).toEqual(['ReportBatchItemFailures']);
    expect(props['BatchSize']).toBeGreaterThanOrEqual(1);
    expect(props['BatchSize']).toBeLessThanOrEqual(5);
    // The copyWorkerMaxConcurrency param (default 5): the bound on GES requests, planning included.
    expect((props['ScalingConfig'] as Json)['MaximumConcurrency']).toBe(5);
  });

  it('runs restoreDrill on its own schedule (drillSchedule, drillScheduleEnabled) with the drill queue, DRILL_BYTE_BUDGET and DRILL_SAMPLE_PERCENT, in its own role', () => {
    const props = resource('RestoreDrillLambdaFunction', 'AWS::Lambda::Function').Properties;
    expect(props).toMatchObject({
      FunctionName: 'ges-archiver-dev-restoreDrill', Runtime: 'nodejs22.x', Architectures: ['arm64'],
      Handler: 'functions/restore-drill.handler', Timeout: 900, MemorySize: 512,
      Role: { 'Fn::GetAtt': ['RestoreDrillRole', 'Arn'] },
    });
    const vars = (props['Environment'] as { Variables: Json }).Variables;
    expect(vars['DRILL_SAMPLE_PERCENT']).toBe('100');
    expect(vars['DRILL_BYTE_BUDGET']).toBe('100G');
    expect(vars['DRILL_QUEUE_URL']).toEqual({ Ref: 'DrillQueue' });
    expect(vars['ALERT_TOPIC_ARN']).toEqual({ Ref: 'AlertTopic' });
    expect(vars['ARCHIVE_BUCKET']).toEqual({ Ref: 'ArchiveBucket' });
    const schedule = scheduleOf('RestoreDrillLambdaFunction');
    expect(schedule['ScheduleExpression']).toBe('cron(0 5 ? * SUN *)');
    expect(schedule['ScheduleExpressionTimezone']).toBe('UTC');
    expect(schedule['State']).toBe('ENABLED');
    const target = schedule['Target'] as Json;
    expect(target['RoleArn']).toEqual({ 'Fn::GetAtt': ['DrillSchedulerInvokeRole', 'Arn'] });
    expect(JSON.parse(target['Input'] as string)).toEqual({ source: 'ges-archiver.drill' });
  });

  it('feeds drillWorker from the drill queue (one backup a message, partial batch responses, bounded concurrency), whose dead letters alarm', () => {
    const props = resource('DrillWorkerLambdaFunction', 'AWS::Lambda::Function').Properties;
    expect(props).toMatchObject({
      FunctionName: 'ges-archiver-dev-drillWorker', Handler: 'functions/drill-worker.handler', Timeout: 900, MemorySize: 1024,
      Role: { 'Fn::GetAtt': ['DrillWorkerRole', 'Arn'] },
    });
    expect((props['Environment'] as { Variables: Json }).Variables['DRILL_QUEUE_URL']).toEqual({ Ref: 'DrillQueue' });
    const mapping = mappingOf('DrillQueue');
    expect(mapping).toMatchObject({
      FunctionName: { 'Fn::GetAtt': ['DrillWorkerLambdaFunction', 'Arn'] }, FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 4 },
    });
    const queue = resource('DrillQueue', 'AWS::SQS::Queue').Properties;
    // AWS's rule for SQS event sources: visibility timeout >= 6 x the function timeout.
    expect(queue['VisibilityTimeout']).toBeGreaterThanOrEqual(6 * 900);
    expect(queue['RedrivePolicy']).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': ['DrillDeadLetterQueue', 'Arn'] }, maxReceiveCount: 3 });
    expect(resource('DrillDeadLetterQueueAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['DrillDeadLetterQueue', 'QueueName'] } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', AlarmActions: [{ Ref: 'AlertTopic' }],
    });
    expect(resource('DrillWorkerErrorsAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'DrillWorkerLambdaFunction' } }],
    });
  });

  it('runs scheduledPrune on its own schedule, off by default, with the retention params and without Huawei credentials', () => {
    const props = resource('ScheduledPruneLambdaFunction', 'AWS::Lambda::Function').Properties;
    expect(props).toMatchObject({
      FunctionName: 'ges-archiver-dev-scheduledPrune', Runtime: 'nodejs22.x', Architectures: ['arm64'],
      Handler: 'functions/scheduled-prune.handler', Timeout: 900, Role: { 'Fn::GetAtt': ['PruneRole', 'Arn'] },
    });
    const vars = (props['Environment'] as { Variables: Json }).Variables;
    // Empty by default: the function refuses to prune without a keep-last.
    expect(vars['PRUNE_KEEP_LAST']).toBe('');
    expect(vars['PRUNE_KEEP_WITHIN']).toBe('');
    expect(vars['ALERT_TOPIC_ARN']).toEqual({ Ref: 'AlertTopic' });
    const schedule = scheduleOf('ScheduledPruneLambdaFunction');
    expect(schedule['State']).toBe('DISABLED');
    expect(schedule['ScheduleExpression']).toMatch(/^(rate|cron)\(.+\)$/);
    const target = schedule['Target'] as Json;
    expect(target['RoleArn']).toEqual({ 'Fn::GetAtt': ['PruneSchedulerInvokeRole', 'Arn'] });
    expect(JSON.parse(target['Input'] as string)).toEqual({ source: 'ges-archiver.prune' });
  });

  it('has no trigger on archiveBackup (manual invocation only)', () => {
    const triggers = ['AWS::Scheduler::Schedule', 'AWS::Events::Rule', 'AWS::Lambda::EventSourceMapping', 'AWS::Lambda::Permission']
      .flatMap((type) => ofType(type));
    expect(JSON.stringify(triggers)).not.toContain('ArchiveBackupLambdaFunction');
  });
});

describe('bundles', () => {
  // package.json engines: >=22.0.0. CI's Node 22 (this one) and the oldest 22, as
  // scripts/setup.sh fetches it (Linux x64): undici 8 reads functions 22.0 lacks as it loads.
  const OLDEST_NODE = join(root, '.local-stack/node-22.0.0/bin/node');
  const NODES: Array<[string, string]> = [[`CI's Node ${process.versions.node}`, process.execPath]];
  if (`${process.platform}-${process.arch}` === 'linux-x64') NODES.push(['Node 22.0.0', OLDEST_NODE]);
  const ALL_FUNCTIONS = {
    ...Object.fromEntries(Object.entries(FUNCTIONS).map(([name, f]) => [name, f.file])),
    restoreDrill: 'functions/restore-drill.mjs',
    drillWorker: 'functions/drill-worker.mjs',
    scheduledPrune: 'functions/scheduled-prune.mjs',
  };

  it.each(NODES.flatMap(([label, node]) => Object.entries(ALL_FUNCTIONS).map(([name, file]) => [name, label, node, file] as const)))(
    '%s: the zipped bundle imports and exports its handler under %s',
    (name, _label, node, file) => {
      expect({ node, exists: existsSync(node) }).toEqual({ node, exists: true });
      const target = join(service.dir, 'bundle-import', name, file);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, readZipEntry(join(outDir, `${name}.zip`), file));
      const out = execFileSync(node, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(target)}); console.log(process.version, typeof m.handler);`], { encoding: 'utf8' });
      expect(out.trim()).toMatch(/^v22\.\d+\.\d+ function$/);
    },
  );

  it('scheduledPrune is one ESM bundle that refuses to prune without a retention', () => {
    const file = join(service.dir, 'bundle-check', 'functions/scheduled-prune.mjs');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, readZipEntry(join(outDir, 'scheduledPrune.zip'), 'functions/scheduled-prune.mjs'));
    const script = `const { handler } = await import(${JSON.stringify(file)});
      process.env.ARCHIVE_BUCKET = 'bucket-ok';
      const ctx = { functionName: 'f', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60000 };
      try { await handler({}, ctx); console.log('no error'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const result = JSON.parse(out.trim()) as { code: string; message: string };
    expect(result.code).toBe('CONFIG_INVALID');
    expect(result.message).toContain('pruneKeepLast');
  });

  it.each(Object.entries(FUNCTIONS))('%s is one ESM bundle (with its source map) that loads under Node 22', (name, f) => {
    const zip = join(outDir, `${name}.zip`);
    const code = readZipEntry(zip, f.file);
    expect(readZipEntry(zip, `${f.file}.map`).length).toBeGreaterThan(0);
    // The SDK is bundled (see serverless.yml): no bare import of it remains.
    expect(code.toString('utf8')).not.toMatch(/from\s+["']@aws-sdk\//);
    const file = join(service.dir, 'bundle-check', f.file);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, code);
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(file)}); console.log(typeof m.handler);`], { encoding: 'utf8' });
    expect(out.trim()).toBe('function');
  });

  it('rejects an invalid manual event with ARGS_INVALID naming the field (bundled archiveBackup)', () => {
    const file = join(service.dir, 'bundle-check', 'functions/archive-backup.mjs');
    writeFileSync(file, readZipEntry(join(outDir, 'archiveBackup.zip'), 'functions/archive-backup.mjs'));
    const script = `const { handler } = await import(${JSON.stringify(file)});
      const ctx = { functionName: 'f', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60000 };
      try { await handler({ graphId: '../x' }, ctx); console.log('no error'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const result = JSON.parse(out.trim()) as { code: string; message: string };
    expect(result.code).toBe('ARGS_INVALID');
    expect(result.message).toContain('graphId');
    expect(result.message).toContain('backupId');
  });
});

describe('CloudFormation resource schemas (@aws-cdk/aws-service-spec)', () => {
  it('the packaged template has no schema error: types, property names, required properties, literal types, GetAtt attributes, Ref/Sub targets, cycles', async () => {
    const db = await loadAwsServiceSpec();
    expect(validateTemplate(db, template as unknown as CfnTemplate)).toEqual([]);
  }, 60_000);

  it('nor with every optional feature on (messaging key, backup age alarm, cold storage, object lock, bucket key, e-mail, prune)', async () => {
    const db = await loadAwsServiceSpec();
    expect(validateTemplate(db, templateAllOn as unknown as CfnTemplate)).toEqual([]);
    for (const id of ['MessagingKey', 'MessagingKeyAlias', 'BackupAgeAlarm', 'AlertEmailSubscription']) expect(templateAllOn.Resources[id]).toBeDefined();
    expect(templateAllOn.Conditions['HasMessagingKey']).toEqual({ 'Fn::Equals': ['on', 'on'] });
    expect(JSON.stringify(Object.values(templateAllOn.Resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule').map((r) => r.Properties['State']))).toBe('["ENABLED","ENABLED","ENABLED"]');
  }, 60_000);
});

describe('operations', () => {
  const alarm = (id: string) => resource(id, 'AWS::CloudWatch::Alarm').Properties;
  const FUNCTION_IDS = ['ScheduledRunLambdaFunction', 'ArchiveBackupLambdaFunction', 'CopyWorkerLambdaFunction', 'RestoreDrillLambdaFunction', 'ScheduledPruneLambdaFunction', 'DrillWorkerLambdaFunction'];
  /** The function and metric of each MetricStat of a metric-math alarm, and its expression. */
  function mathAlarm(id: string): { stats: Array<{ fn: unknown; metric: unknown; stat: unknown }>; expression: string } {
    const metrics = alarm(id)['Metrics'] as Array<{ Id: string; Expression?: string; ReturnData: boolean; MetricStat?: { Metric: { MetricName: string; Dimensions: Array<{ Value: unknown }> }; Stat: string } }>;
    const stats = metrics.filter((m) => m.MetricStat).map((m) => ({ fn: m.MetricStat!.Metric.Dimensions[0]!.Value, metric: m.MetricStat!.Metric.MetricName, stat: m.MetricStat!.Stat }));
    const returned = metrics.filter((m) => m.ReturnData);
    expect(returned).toHaveLength(1);
    const expression = returned[0]!.Expression!;
    // The expression adds up (or takes the maximum of) every MetricStat it is given.
    for (const m of metrics.filter((x) => x.MetricStat)) expect(expression).toContain(m.Id);
    return { stats, expression };
  }

  it('runs scheduledRun one at a time (reserved concurrency 1)', () => {
    expect(resources['ScheduledRunLambdaFunction']!.Properties['ReservedConcurrentExecutions']).toBe(1);
  });

  it('keeps no Lambda versions (versionFunctions: false)', () => {
    expect(ofType('AWS::Lambda::Version')).toEqual([]);
  });

  it('tags the stack (service, stage), which CloudFormation passes on to every taggable resource', () => {
    const state = JSON.parse(readFileSync(join(outDir, 'serverless-state.json'), 'utf8')) as { service: { provider: { stackTags?: Json } } };
    expect(state.service.provider.stackTags).toEqual({ service: 'ges-archiver', stage: 'dev' });
  });

  it('passes inlineThroughputMbps to scheduledRun as INLINE_THROUGHPUT_MBPS, by default low enough that runs fan out', () => {
    const vars = (resources['ScheduledRunLambdaFunction']!.Properties['Environment'] as { Variables: Json }).Variables;
    expect(vars['INLINE_THROUGHPUT_MBPS']).toBe('1');
  });

  it('gives every schedule a retry policy and the schedule dead-letter queue, and alarms on that queue', () => {
    const schedules = ofType('AWS::Scheduler::Schedule');
    expect(schedules.map(([id]) => id).sort()).toEqual(['RestoreDrillSchedule', 'ScheduledPruneSchedule', 'ScheduledRunSchedule']);
    for (const [, s] of schedules) {
      const target = s.Properties['Target'] as Json;
      expect(target['DeadLetterConfig']).toEqual({ Arn: { 'Fn::GetAtt': ['ScheduleDeadLetterQueue', 'Arn'] } });
      expect(target['RetryPolicy']).toEqual({ MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 });
    }
    expect(resource('ScheduleDeadLetterQueue', 'AWS::SQS::Queue').Properties['MessageRetentionPeriod']).toBe(14 * 24 * 3600);
    expect(alarm('ScheduleDeadLetterQueueAlarm')).toMatchObject({
      Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['ScheduleDeadLetterQueue', 'QueueName'] } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('alarms on throttles, on an invocation near its timeout and on dropped asynchronous invocations, for every function', () => {
    const throttles = mathAlarm('LambdaThrottlesAlarm');
    expect(throttles.stats).toEqual(FUNCTION_IDS.map((id) => ({ fn: { Ref: id }, metric: 'Throttles', stat: 'Sum' })));
    expect(throttles.expression).toMatch(/^SUM\(/);
    expect(alarm('LambdaThrottlesAlarm')).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching' });

    const duration = mathAlarm('DurationNearTimeoutAlarm');
    expect(duration.stats).toEqual(FUNCTION_IDS.map((id) => ({ fn: { Ref: id }, metric: 'Duration', stat: 'Maximum' })));
    expect(duration.expression).toMatch(/^MAX\(/);
    // Near the timeout: past the handover margin, before Lambda's own cut-off.
    for (const id of FUNCTION_IDS) {
      const timeoutMs = (resources[id]!.Properties['Timeout'] as number) * 1000;
      expect(alarm('DurationNearTimeoutAlarm')['Threshold']).toBeLessThan(timeoutMs);
      expect(alarm('DurationNearTimeoutAlarm')['Threshold']).toBeGreaterThan(timeoutMs - 60_000);
    }

    const dropped = mathAlarm('DroppedInvocationsAlarm');
    expect(dropped.stats).toEqual(FUNCTION_IDS.map((id) => ({ fn: { Ref: id }, metric: 'AsyncEventsDropped', stat: 'Sum' })));
    expect(alarm('DroppedInvocationsAlarm')).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
  });

  it('keeps BackupAgeAlarm in the state its daily datapoint set between datapoints (no flapping)', () => {
    const props = alarm('BackupAgeAlarm');
    expect(props['TreatMissingData']).toBe('ignore');
    expect(props['EvaluationPeriods']).toBe(1);
  });

  it('shows the new alarms on the dashboard', () => {
    const body = JSON.stringify(resource('Dashboard', 'AWS::CloudWatch::Dashboard').Properties['DashboardBody']);
    for (const id of ['LambdaThrottlesAlarm', 'DurationNearTimeoutAlarm', 'ScheduleDeadLetterQueueAlarm', 'DroppedInvocationsAlarm']) expect(body).toContain(`"${id}"`);
  });

  it('encrypts the topic and every queue with the messaging key only when messagingKmsKey is true, else SQS-managed keys', () => {
    const queues = ofType('AWS::SQS::Queue');
    expect(queues.map(([id]) => id).sort()).toEqual(['CopyDeadLetterQueue', 'CopyQueue', 'DrillDeadLetterQueue', 'DrillQueue', 'ScheduleDeadLetterQueue']);
    for (const [, q] of queues) {
      expect(q.Properties['KmsMasterKeyId']).toEqual({ 'Fn::If': ['HasMessagingKey', { Ref: 'MessagingKey' }, { Ref: 'AWS::NoValue' }] });
      expect(q.Properties['SqsManagedSseEnabled']).toEqual({ 'Fn::If': ['HasMessagingKey', { Ref: 'AWS::NoValue' }, true] });
    }
    expect(resources['AlertTopic']!.Properties['KmsMasterKeyId']).toEqual({ 'Fn::If': ['HasMessagingKey', { Ref: 'MessagingKey' }, { Ref: 'AWS::NoValue' }] });
    expect(template.Conditions['HasMessagingKey']).toEqual({ 'Fn::Equals': ['off', 'on'] });
    expect(resource('MessagingKey', 'AWS::KMS::Key').Condition).toBe('HasMessagingKey');
  });

  it('lets CloudWatch alarms publish to the encrypted topic (key policy) and every publishing or queueing role use the key', () => {
    const key = resource('MessagingKey', 'AWS::KMS::Key').Properties;
    expect(key['EnableKeyRotation']).toBe(true);
    const statements = (key['KeyPolicy'] as { Statement: Array<{ Principal: Json; Action: string[]; Condition?: Json }> }).Statement;
    const cloudwatch = statements.find((s) => JSON.stringify(s.Principal) === JSON.stringify({ Service: 'cloudwatch.amazonaws.com' }))!;
    expect(cloudwatch.Action.sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    expect(cloudwatch.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
    for (const [roleId, role] of ofType('AWS::IAM::Role')) {
      const text = JSON.stringify(role.Properties['Policies']);
      expect([roleId, text.includes('{"Fn::If":["HasMessagingKey",{"Sid":"MessagingKey","Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":{"Fn::GetAtt":["MessagingKey","Arn"]}}')]).toEqual([roleId, true]);
    }
  });
});

describe('archive bucket', () => {
  it('is versioned, KMS-encrypted, fully private and owner-enforced', () => {
    const props = resource('ArchiveBucket', 'AWS::S3::Bucket').Properties;
    expect(props['VersioningConfiguration']).toEqual({ Status: 'Enabled' });
    const sse = (props['BucketEncryption'] as { ServerSideEncryptionConfiguration: Json[] }).ServerSideEncryptionConfiguration[0]!;
    expect((sse['ServerSideEncryptionByDefault'] as Json)['SSEAlgorithm']).toBe('aws:kms');
    // Customer key only when the kmsKeyArn param is set, else the aws/s3 key.
    expect((sse['ServerSideEncryptionByDefault'] as Json)['KMSMasterKeyID']).toEqual({ 'Fn::If': ['HasKmsKey', '', { Ref: 'AWS::NoValue' }] });
    expect(props['PublicAccessBlockConfiguration']).toEqual({
      BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
    });
  });

  function lifecycleRules(): Json[] {
    return ((resources['ArchiveBucket']!.Properties['LifecycleConfiguration']) as { Rules: Json[] }).Rules;
  }

  it('aborts incomplete multipart uploads after 7 days (a continuation chain keeps its upload), expires old versions under _state/ soon and elsewhere after noncurrentVersionDays, and removes expired delete markers', () => {
    const rules = lifecycleRules();
    expect(rules).toContainEqual(expect.objectContaining({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }));
    expect(rules).toContainEqual({ Id: 'ExpireNoncurrentState', Status: 'Enabled', Prefix: 'ges-backups/_state/', NoncurrentVersionExpiration: { NoncurrentDays: 7 } });
    expect(rules).toContainEqual({ Id: 'RemoveExpiredDeleteMarkers', Status: 'Enabled', Prefix: 'ges-backups/', ExpiredObjectDeleteMarker: true });
    const noncurrent = rules.find((r) => 'Fn::If' in r && (r['Fn::If'] as [string])[0] === 'HasNoncurrentExpiry') as { 'Fn::If': [string, Json, Json] };
    expect(noncurrent['Fn::If'][1]).toEqual({ Id: 'ExpireNoncurrentVersions', Status: 'Enabled', Prefix: 'ges-backups/', NoncurrentVersionExpiration: { NoncurrentDays: 30 } });
    expect(noncurrent['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
  });

  it('expires working state under _state/ that no run finished, after two weeks', () => {
    expect(lifecycleRules()).toContainEqual({ Id: 'ExpireStaleWorkingState', Status: 'Enabled', Prefix: 'ges-backups/_state/', ExpirationInDays: 14 });
  });

  it('moves only backup folders to cold storage, and only when configured: one rule per first character of a graph id, none for _state/ or _runs/', () => {
    const cold = lifecycleRules().filter((r) => 'Fn::If' in r && (r['Fn::If'] as [string])[0] === 'HasColdTransition') as Array<{ 'Fn::If': [string, Json, Json] }>;
    const alphabet = [...'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'];
    expect(cold.map((r) => r['Fn::If'][1]['Prefix'])).toEqual(alphabet.map((c) => `ges-backups/${c}`));
    expect(new Set(cold.map((r) => r['Fn::If'][1]['Id'])).size).toBe(alphabet.length);
    for (const r of cold) {
      expect(r['Fn::If'][1]).toMatchObject({ Status: 'Enabled', Transitions: [{ StorageClass: 'GLACIER_IR' }] });
      expect(r['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
    }
    // Every key the archive writes outside a backup folder starts with "_".
    expect(alphabet.some((c) => '_state/'.startsWith(c) || '_runs/'.startsWith(c))).toBe(false);
  });

  it('always enables Object Lock (it cannot be turned on later without replacing the bucket); only the default retention is optional', () => {
    const props = resources['ArchiveBucket']!.Properties;
    expect(props['ObjectLockEnabled']).toBe(true);
    const lock = props['ObjectLockConfiguration'] as { ObjectLockEnabled: string; Rule: { 'Fn::If': [string, Json, Json] } };
    expect(lock.ObjectLockEnabled).toBe('Enabled');
    expect(lock.Rule['Fn::If'][0]).toBe('HasObjectLockRetention');
    expect(lock.Rule['Fn::If'][1]).toMatchObject({ DefaultRetention: { Mode: 'GOVERNANCE' } });
    expect(lock.Rule['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
  });

  it('denies every request that does not use TLS', () => {
    const policy = resource('ArchiveBucketPolicy', 'AWS::S3::BucketPolicy').Properties;
    expect(policy['Bucket']).toEqual({ Ref: 'ArchiveBucket' });
    const statements = (policy['PolicyDocument'] as { Statement: Json[] }).Statement;
    expect(statements).toContainEqual(expect.objectContaining({
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Resource: [{ 'Fn::GetAtt': ['ArchiveBucket', 'Arn'] }, { 'Fn::Sub': '${ArchiveBucket.Arn}/*' }],
    }));
  });

  it('defines every optional feature as a condition on its param (all off by default)', () => {
    for (const c of ['HasManifestUri', 'HasAlertEmail', 'HasKmsKey', 'HasColdTransition', 'HasObjectLockRetention']) {
      expect(template.Conditions[c]).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    }
  });
});

describe('copy queue', () => {
  it('hides a message for at least 6 x the worker timeout and redrives to a dead-letter queue after a bounded number of receives', () => {
    const queue = resource('CopyQueue', 'AWS::SQS::Queue').Properties;
    const workerTimeout = resources['CopyWorkerLambdaFunction']!.Properties['Timeout'] as number;
    expect(queue['VisibilityTimeout']).toBeGreaterThanOrEqual(6 * workerTimeout);
    const redrive = queue['RedrivePolicy'] as Json;
    expect(redrive['deadLetterTargetArn']).toEqual({ 'Fn::GetAtt': ['CopyDeadLetterQueue', 'Arn'] });
    expect(redrive['maxReceiveCount']).toBeGreaterThanOrEqual(2);
    expect(redrive['maxReceiveCount']).toBeLessThanOrEqual(10);
    // The worker alerts on a message's last delivery: it must know the same count.
    const workerEnv = (resources['CopyWorkerLambdaFunction']!.Properties['Environment'] as { Variables: Json }).Variables;
    expect(Number(workerEnv['MAX_RECEIVE_COUNT'])).toBe(redrive['maxReceiveCount']);
  });

  it('keeps dead letters for 14 days', () => {
    expect(resource('CopyDeadLetterQueue', 'AWS::SQS::Queue').Properties['MessageRetentionPeriod']).toBe(14 * 24 * 3600);
  });
});

describe('alerts', () => {
  it('has a topic with an email subscription only when alertEmail is set', () => {
    resource('AlertTopic', 'AWS::SNS::Topic');
    const sub = resource('AlertEmailSubscription', 'AWS::SNS::Subscription');
    expect(sub.Condition).toBe('HasAlertEmail');
    expect(sub.Properties).toMatchObject({ TopicArn: { Ref: 'AlertTopic' }, Protocol: 'email' });
  });

  it('sends every alarm to the topic', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(6);
    for (const [, alarm] of alarms) expect(alarm.Properties['AlarmActions']).toEqual([{ Ref: 'AlertTopic' }]);
  });

  it.each([
    ['ScheduledRunErrorsAlarm', 'ScheduledRunLambdaFunction'],
    ['ArchiveBackupErrorsAlarm', 'ArchiveBackupLambdaFunction'],
    ['CopyWorkerErrorsAlarm', 'CopyWorkerLambdaFunction'],
  ])('%s watches the Errors of %s', (alarmId, fnId) => {
    expect(resource(alarmId, 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('alarms on any message in the dead-letter queue and on old messages in the copy queue', () => {
    expect(resource('CopyDeadLetterQueueAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['CopyDeadLetterQueue', 'QueueName'] } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(resource('CopyQueueAgeAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['CopyQueue', 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('alarms when no scheduled run succeeded for freshnessHours, missing data counting as breaching', () => {
    const props = resource('ScheduledRunFreshnessAlarm', 'AWS::CloudWatch::Alarm').Properties;
    // Exactly the dimensions the code's EMF carries (test/unit/metrics-emf.test.ts):
    // CloudWatch matches an alarm's dimension set exactly.
    expect(props).toMatchObject({
      Namespace: METRIC_NAMESPACE,
      MetricName: METRIC_SCHEDULED_RUN_SUCCEEDED,
      Dimensions: [{ Name: METRIC_DIMENSION_SERVICE, Value: METRIC_SERVICE_NAME }, { Name: METRIC_DIMENSION_STAGE, Value: 'dev' }],
      Statistic: 'Sum', Period: 3600, EvaluationPeriods: 26, DatapointsToAlarm: 26,
      Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching',
    });
  });

  it('alarms on the scheduled prune failing to run', () => {
    expect(resource('ScheduledPruneErrorsAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ScheduledPruneLambdaFunction' } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', AlarmActions: [{ Ref: 'AlertTopic' }],
    });
  });

  it('alarms on the restore drill failing to run, and on a too old newest backup only when backupAgeAlarmHours is set', () => {
    expect(resource('RestoreDrillErrorsAlarm', 'AWS::CloudWatch::Alarm').Properties).toMatchObject({
      Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'RestoreDrillLambdaFunction' } }],
      Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
    });
    const age = resource('BackupAgeAlarm', 'AWS::CloudWatch::Alarm');
    expect(age.Condition).toBe('HasBackupAgeAlarm');
    const query = (age.Properties['Metrics'] as Json[])[0]!;
    expect(query['Expression']).toBe(`SELECT MAX(${MetricNames.NewestBackupAgeHours}) FROM SCHEMA(${METRIC_NAMESPACE}, Graph, service, Stage) WHERE Stage = 'dev'`);
    expect(template.Conditions['HasBackupAgeAlarm']).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
  });
});

describe('dashboard', () => {
  interface Widget { type: string; properties: { title?: string; metrics?: unknown[][]; alarms?: string[]; region?: string } }

  function dashboard(): { widgets: Widget[] } {
    const body = resource('Dashboard', 'AWS::CloudWatch::Dashboard').Properties['DashboardBody'] as { 'Fn::Sub': [string, Json] };
    const [text, vars] = body['Fn::Sub'];
    // Every ${Name} is either a pseudo parameter or a variable of the Fn::Sub.
    const names = [...text.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const name of names) expect(name.startsWith('AWS::') || name in vars).toBe(true);
    return JSON.parse(text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => `SUB_${name.replace(/\W/g, '_')}`)) as { widgets: Widget[] };
  }

  it('is valid JSON once substituted, in the stack\'s region', () => {
    const { widgets } = dashboard();
    expect(widgets.length).toBeGreaterThanOrEqual(10);
    for (const w of widgets.filter((x) => x.type === 'metric')) expect(w.properties.region).toBe('SUB_AWS__Region');
  });

  it('shows every custom metric, with the dimensions the code emits', () => {
    const text = JSON.stringify(dashboard());
    for (const name of Object.values(MetricNames)) expect(text).toContain(name);
    const custom = dashboard().widgets.flatMap((w) => w.properties.metrics ?? []).filter((m) => m[0] === METRIC_NAMESPACE);
    expect(custom.length).toBeGreaterThan(0);
    for (const m of custom) expect(m.slice(2, 6)).toEqual([METRIC_DIMENSION_SERVICE, METRIC_SERVICE_NAME, METRIC_DIMENSION_STAGE, 'dev']);
    expect(text).toContain(`SEARCH('{${METRIC_NAMESPACE},Graph,service,Stage} MetricName=\\"${MetricNames.NewestBackupAgeHours}\\" Stage=\\"dev\\"', 'Maximum', 3600)`);
  });

  it('shows the copy queue, the dead-letter queue, every function\'s errors and the alarms', () => {
    const { widgets } = dashboard();
    const text = JSON.stringify(widgets);
    expect(text).toContain('ApproximateAgeOfOldestMessage');
    expect(text).toContain('SUB_CopyQueueName');
    expect(text).toContain('SUB_DeadLetterQueueName');
    for (const fn of ['scheduledRun', 'archiveBackup', 'copyWorker', 'restoreDrill', 'scheduledPrune', 'drillWorker']) expect(text).toContain(`ges-archiver-dev-${fn}`);
    const alarms = widgets.find((w) => w.type === 'alarm')!.properties.alarms!;
    expect(alarms).toContain('SUB_FreshnessAlarmArn');
    expect(alarms).toContain('SUB_DrillErrorsAlarmArn');
    expect(alarms).toContain('SUB_DrillWorkerErrorsAlarmArn');
    expect(alarms).toContain('SUB_DrillDeadLetterAlarmArn');
    expect(alarms).toContain('SUB_PruneErrorsAlarmArn');
  });
});

describe('IAM', () => {
  interface Statement { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: Json }

  function statementsOf(roleId: string): Statement[] {
    const policies = resource(roleId, 'AWS::IAM::Role').Properties['Policies'] as Array<{ PolicyDocument: { Statement: Array<Statement | Json> } }>;
    // Conditional statements ({ Fn::If: [cond, statement, NoValue] }) count with their statement.
    return policies.flatMap((p) => p.PolicyDocument.Statement).map((s) => ('Fn::If' in s ? (s['Fn::If'] as [string, Statement])[1] : s as Statement));
  }

  const roles = () => ofType('AWS::IAM::Role').map(([id]) => id);
  const actions = (s: Statement) => [s.Action].flat();
  const invokeStatements = (roleId: string) => statementsOf(roleId).filter((s) => actions(s).some((a) => a.startsWith('lambda:')));

  it('lets each scheduler role invoke its function, send to the schedule dead-letter queue, and use the messaging key; nothing else', () => {
    for (const roleId of ['SchedulerInvokeRole', 'DrillSchedulerInvokeRole', 'PruneSchedulerInvokeRole']) {
      const statements = statementsOf(roleId);
      expect([roleId, statements.flatMap(actions).sort()]).toEqual([roleId, ['kms:Decrypt', 'kms:GenerateDataKey', 'lambda:InvokeFunction', 'sqs:SendMessage']]);
      expect(statements.find((s) => actions(s).includes('sqs:SendMessage'))!.Resource).toEqual({ 'Fn::GetAtt': ['ScheduleDeadLetterQueue', 'Arn'] });
    }
  });

  it('has one role per function plus one scheduler role per schedule, and no shared default role', () => {
    expect(roles().sort()).toEqual(['ArchiveBackupRole', 'CopyWorkerRole', 'DrillSchedulerInvokeRole', 'DrillWorkerRole', 'PruneRole', 'PruneSchedulerInvokeRole', 'RestoreDrillRole', 'ScheduledRunRole', 'SchedulerInvokeRole']);
    expect(resources['IamRoleLambdaExecution']).toBeUndefined();
  });

  it('never allows a wildcard action or a wildcard resource', () => {
    for (const roleId of roles()) {
      for (const s of statementsOf(roleId)) {
        for (const a of actions(s)) expect(a === '*' || a.endsWith(':*')).toBe(false);
        expect([roleId, [s.Resource].flat().some((r) => r === '*')]).toEqual([roleId, false]);
      }
    }
  });

  it('grants nothing the code does not call: no ListBucketMultipartUploads (only `cleanup`, a CLI command, lists uploads), no PutMetricData (metrics are EMF log lines), no GetQueueAttributes for the sender', () => {
    for (const roleId of roles()) {
      const all = statementsOf(roleId).flatMap(actions);
      expect([roleId, all.filter((a) => ['s3:ListBucketMultipartUploads', 'cloudwatch:PutMetricData'].includes(a))]).toEqual([roleId, []]);
    }
    expect(statementsOf('ScheduledRunRole').flatMap(actions)).not.toContain('sqs:GetQueueAttributes');
  });

  it('lets each function write only its own log group', () => {
    for (const [name, f] of [...Object.entries(FUNCTIONS), ['restoreDrill', { role: 'RestoreDrillRole' }], ['drillWorker', { role: 'DrillWorkerRole' }]] as const) {
      const logs = statementsOf(f.role).filter((s) => actions(s).some((a) => a.startsWith('logs:')));
      expect(logs).toHaveLength(1);
      expect(JSON.stringify(logs[0]!.Resource)).toContain(`log-group:/aws/lambda/ges-archiver-dev-${name}:*`);
    }
  });

  it('scopes S3 object access to the archive prefix and listing to the bucket with a prefix condition', () => {
    for (const f of Object.values(FUNCTIONS)) {
      const write = statementsOf(f.role).find((s) => s.Sid === 'WriteArchive')!;
      expect(write.Resource).toEqual({ 'Fn::Sub': '${ArchiveBucket.Arn}/ges-backups/*' });
      expect(actions(write)).not.toContain('s3:DeleteObject');
      const list = statementsOf(f.role).find((s) => s.Sid === 'ListArchive')!;
      expect(list.Resource).toEqual({ 'Fn::GetAtt': ['ArchiveBucket', 'Arn'] });
      expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['ges-backups/*'] } });
    }
  });

  /**
   * IAM's own evaluation, for the S3 statements of one role: an explicit Deny wins, else any Allow
   * whose action, resource (wildcards `*` and `?`, `*` crossing `/`) and StringLike conditions
   * match. The bucket's ARN stands for ${ArchiveBucket.Arn}.
   */
  const BUCKET_ARN = 'arn:aws:s3:::archive';
  function glob(pattern: string, value: string): boolean {
    const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp(`^${re}$`).test(value);
  }
  function resourcesOf(s: Statement): string[] {
    return [s.Resource].flat().flatMap((r) => {
      if (typeof r === 'string') return [r];
      const sub = (r as { 'Fn::Sub'?: unknown })['Fn::Sub'];
      if (typeof sub === 'string') return [sub.replace('${ArchiveBucket.Arn}', BUCKET_ARN)];
      const att = (r as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
      return JSON.stringify(att) === JSON.stringify(['ArchiveBucket', 'Arn']) ? [BUCKET_ARN] : [];
    });
  }
  function allows(roleId: string, action: string, resource: string, context: Record<string, string> = {}): boolean {
    const applies = (s: Statement): boolean => actions(s).some((a) => glob(a, action))
      && resourcesOf(s).some((r) => glob(r, resource))
      && Object.entries((s.Condition?.['StringLike'] ?? {}) as Record<string, string[]>)
        .every(([key, patterns]) => context[key] !== undefined && [patterns].flat().some((p) => glob(p, context[key]!)));
    const statements = statementsOf(roleId);
    return !statements.some((s) => s.Effect === 'Deny' && applies(s)) && statements.some((s) => s.Effect === 'Allow' && applies(s));
  }
  const obj = (key: string) => `${BUCKET_ARN}/ges-backups/${key}`;

  it('lets the archiving roles do the copier\'s own cleanup: delete (or delete the version of) what a failed copy wrote at a file\'s key, and a finished backup\'s _state/', () => {
    for (const f of Object.values(FUNCTIONS)) {
      for (const action of ['s3:DeleteObject', 's3:DeleteObjectVersion']) {
        expect([f.role, action, allows(f.role, action, obj('g-1/b-1/vertices.bin'))]).toEqual([f.role, action, true]);
        expect(allows(f.role, action, obj('_state/g-1/b-1/files/vertices.bin.json'))).toBe(true);
        expect(allows(f.role, action, obj('_state/g-1/b-1/checkpoints/vertices.bin.json'))).toBe(true);
      }
      expect(allows(f.role, 's3:AbortMultipartUpload', obj('g-1/b-1/vertices.bin'))).toBe(true);
    }
  });

  it('never lets a role but the prune delete a finished manifest.json, a run report, or anything outside the prefix', () => {
    // The prune is the one role that deletes archived backups (see below).
    for (const roleId of roles().filter((r) => r !== 'PruneRole')) {
      for (const action of ['s3:DeleteObject', 's3:DeleteObjectVersion']) {
        expect([roleId, allows(roleId, action, obj('g-1/b-1/manifest.json'))]).toEqual([roleId, false]);
        expect(allows(roleId, action, obj('_runs/20261127T133000Z-1a2b3c4d.json'))).toBe(false);
        expect(allows(roleId, action, obj('_runs/20261127T133000Z-1a2b3c4d.graph.g-1.json'))).toBe(false);
        expect(allows(roleId, action, `${BUCKET_ARN}/config/manifest.json`)).toBe(false);
        expect(allows(roleId, action, `${BUCKET_ARN}/other/g/b/file.bin`)).toBe(false);
      }
    }
  });

  it('lets the archiving roles pass the bucket check of a run: list under the prefix, probe a write under _state/ and abort it', () => {
    for (const f of Object.values(FUNCTIONS)) {
      expect(allows(f.role, 's3:ListBucket', BUCKET_ARN, { 's3:prefix': 'ges-backups/' })).toBe(true);
      // HeadBucket (s3:ListBucket without a prefix) is refused by the prefix condition: the check does not use it.
      expect(allows(f.role, 's3:ListBucket', BUCKET_ARN)).toBe(false);
      expect(allows(f.role, 's3:PutObject', obj('_state/preflight'))).toBe(true);
      expect(allows(f.role, 's3:AbortMultipartUpload', obj('_state/preflight'))).toBe(true);
    }
  });

  it('lets restoreDrill only list the prefix, queue drill messages and publish to the topic; no object read, no secret', () => {
    const statements = statementsOf('RestoreDrillRole');
    // kms: the messaging key (messagingKmsKey), only when set.
    expect(statements.flatMap(actions).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents', 's3:ListBucket', 'sns:Publish', 'sqs:SendMessage']);
    const list = statements.find((s) => s.Sid === 'ListArchive')!;
    expect(list.Resource).toEqual({ 'Fn::GetAtt': ['ArchiveBucket', 'Arn'] });
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['ges-backups/*'] } });
    expect(statements.find((s) => actions(s).includes('sqs:SendMessage'))!.Resource).toEqual({ 'Fn::GetAtt': ['DrillQueue', 'Arn'] });
    expect(statements.find((s) => actions(s).includes('sns:Publish'))!.Resource).toEqual({ Ref: 'AlertTopic' });
    const invoke = invokeStatements('DrillSchedulerInvokeRole');
    expect(invoke).toHaveLength(1);
    expect(invoke[0]!.Resource).toEqual([
      { 'Fn::GetAtt': ['RestoreDrillLambdaFunction', 'Arn'] },
      { 'Fn::Sub': '${RestoreDrillLambdaFunction.Arn}:*' },
    ]);
  });

  it('gives drillWorker read-only access: list and get under the prefix, the drill queue, publish to the topic; no secret', () => {
    const statements = statementsOf('DrillWorkerRole');
    // kms: the archive's key (kmsKeyArn) and the messaging key (messagingKmsKey), each only when set.
    expect(statements.flatMap(actions).sort()).toEqual([
      'kms:Decrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents', 's3:GetObject', 's3:ListBucket', 'sns:Publish',
      'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage', 'sqs:SendMessage',
    ]);
    expect(statements.find((s) => s.Sid === 'ReadArchive')!.Resource).toEqual({ 'Fn::Sub': '${ArchiveBucket.Arn}/ges-backups/*' });
    expect(statements.find((s) => s.Sid === 'ListArchive')!.Condition).toEqual({ StringLike: { 's3:prefix': ['ges-backups/*'] } });
    for (const s of statements.filter((x) => actions(x).some((a) => a.startsWith('sqs:')))) expect(s.Resource).toEqual({ 'Fn::GetAtt': ['DrillQueue', 'Arn'] });
  });

  it('lets scheduledPrune list, read (with the lock status), delete under the prefix and write only its marker under _state/; no secret', () => {
    const statements = statementsOf('PruneRole');
    expect(statements.flatMap(actions).sort()).toEqual([
      'kms:Decrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents', 's3:DeleteObject', 's3:GetObject',
      's3:GetObjectLegalHold', 's3:GetObjectRetention', 's3:ListBucket', 's3:PutObject', 'sns:Publish',
    ]);
    const byAction = (a: string) => statements.find((s) => actions(s).includes(a))!;
    expect(byAction('s3:DeleteObject').Resource).toEqual({ 'Fn::Sub': '${ArchiveBucket.Arn}/ges-backups/*' });
    expect(byAction('s3:PutObject').Resource).toEqual({ 'Fn::Sub': '${ArchiveBucket.Arn}/ges-backups/_state/*' });
    expect(byAction('s3:GetObjectRetention').Resource).toEqual({ 'Fn::Sub': '${ArchiveBucket.Arn}/ges-backups/*' });
    expect(byAction('s3:ListBucket').Condition).toEqual({ StringLike: { 's3:prefix': ['ges-backups/*'] } });
    expect(byAction('sns:Publish').Resource).toEqual({ Ref: 'AlertTopic' });
    const invoke = invokeStatements('PruneSchedulerInvokeRole');
    expect(invoke).toHaveLength(1);
    expect(invoke[0]!.Resource).toEqual([
      { 'Fn::GetAtt': ['ScheduledPruneLambdaFunction', 'Arn'] },
      { 'Fn::Sub': '${ScheduledPruneLambdaFunction.Arn}:*' },
    ]);
  });

  it('reads only the Huawei credentials secret, publishes only to the alert topic', () => {
    for (const f of Object.values(FUNCTIONS)) {
      const statements = statementsOf(f.role);
      const secret = statements.find((s) => actions(s).includes('secretsmanager:GetSecretValue'))!;
      expect(JSON.stringify(secret.Resource)).toContain(':secret:ges-archiver/dev/huawei-??????');
      expect(statements.find((s) => actions(s).includes('sns:Publish'))!.Resource).toEqual({ Ref: 'AlertTopic' });
    }
  });

  it('lets scheduledRun send to the copy queue and only copyWorker consume it', () => {
    const sqsOf = (role: string) => statementsOf(role).filter((s) => actions(s).some((a) => a.startsWith('sqs:')));
    expect(sqsOf('ScheduledRunRole').flatMap(actions)).toContain('sqs:SendMessage');
    expect(sqsOf('ScheduledRunRole').flatMap(actions)).not.toContain('sqs:DeleteMessage');
    // The worker also sends: a copy handed over near the deadline continues in a new message.
    expect(sqsOf('CopyWorkerRole').flatMap(actions)).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:SendMessage']));
    expect(sqsOf('ArchiveBackupRole')).toEqual([]);
    for (const role of ['ScheduledRunRole', 'CopyWorkerRole']) {
      for (const s of sqsOf(role)) expect(s.Resource).toEqual({ 'Fn::GetAtt': ['CopyQueue', 'Arn'] });
    }
  });

  it('lets the scheduler role invoke scheduledRun and nothing else', () => {
    const role = resource('SchedulerInvokeRole', 'AWS::IAM::Role').Properties;
    expect(JSON.stringify(role['AssumeRolePolicyDocument'])).toContain('scheduler.amazonaws.com');
    const statements = invokeStatements('SchedulerInvokeRole');
    expect(statements).toHaveLength(1);
    expect(actions(statements[0]!)).toEqual(['lambda:InvokeFunction']);
    expect(statements[0]!.Resource).toEqual([
      { 'Fn::GetAtt': ['ScheduledRunLambdaFunction', 'Arn'] },
      { 'Fn::Sub': '${ScheduledRunLambdaFunction.Arn}:*' },
    ]);
  });
});
