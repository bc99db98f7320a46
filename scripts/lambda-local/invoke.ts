/**
 * scripts/invoke-local: runs a BUILT Lambda handler (the bundle `npm run package` zipped into
 * .serverless/<function>.zip, exactly what Lambda would run) against the local stack: OpenStack
 * Swift for S3, fauxqs for SQS and SNS, the GES emulator. See the README, "Run a function locally".
 *
 *   scripts/invoke-local <function> [--event FILE | --sample] [--drain] [--timeout SECONDS]
 *
 * The environment is the function's, as serverless.yml would set it (ARCHIVE_BUCKET, COPY_QUEUE_URL,
 * DRILL_QUEUE_URL, GES_ENDPOINT...), plus the local endpoints AWS_ENDPOINT_URL_S3 and
 * AWS_ENDPOINT_URL_SQS (SNS defaults to the SQS one: fauxqs serves both). Nothing goes to AWS:
 * without a local endpoint it refuses to start. The handler's result is printed on stdout as JSON;
 * its logs and EMF metric lines go to stderr.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { readZipEntry } from './zip.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The functions of serverless.yml: bundle file, what they talk to, and (SQS-fed) their queue variable. */
const FUNCTIONS = {
  scheduledRun: { file: 'functions/scheduled-run.mjs', ges: true, sqs: true },
  archiveBackup: { file: 'functions/archive-backup.mjs', ges: true, sqs: false },
  copyWorker: { file: 'functions/copy-worker.mjs', ges: true, sqs: true, queueVar: 'COPY_QUEUE_URL' },
  restoreDrill: { file: 'functions/restore-drill.mjs', ges: false, sqs: true },
  drillWorker: { file: 'functions/drill-worker.mjs', ges: false, sqs: true, queueVar: 'DRILL_QUEUE_URL' },
  scheduledPrune: { file: 'functions/scheduled-prune.mjs', ges: false, sqs: false },
} as const;
type FunctionName = keyof typeof FUNCTIONS;
type FunctionSpec = (typeof FUNCTIONS)[FunctionName] & { queueVar?: string };

const USAGE = `usage: scripts/invoke-local <function> [--event FILE | --sample] [--drain] [--timeout SECONDS] [--package DIR]
  <function>     ${Object.keys(FUNCTIONS).join(', ')}
  --event FILE   the event, a JSON file (default: the function's sample, scripts/lambda-local/events/<function>.json)
  --sample       the function's sample event (the default when --event is not given)
  --drain        copyWorker, drillWorker: invoke once per message waiting on its queue (COPY_QUEUE_URL,
                 DRILL_QUEUE_URL), deleting the message unless the handler reports it failed, until the queue is empty
  --timeout S    the function's time limit the handler sees (default 900, as in serverless.yml)
  --package DIR  where \`npm run package\` put the zips (default .serverless)`;

/** A problem the user fixes: printed as one line (with the fix), exit 2. */
class UsageError extends Error {}

function fail(message: string): never {
  throw new UsageError(message);
}

/** Defaults that make the SDK talk to the local stack as the tests do (path-style S3, Swift's checksum support). */
function localEnv(env: NodeJS.ProcessEnv, fn: FunctionName): void {
  env['S3_FORCE_PATH_STYLE'] ??= 'true';
  env['AWS_REQUEST_CHECKSUM_CALCULATION'] ??= 'WHEN_REQUIRED';
  env['AWS_RESPONSE_CHECKSUM_VALIDATION'] ??= 'WHEN_REQUIRED';
  env['AWS_REGION'] ??= 'us-east-1';
  env['AWS_ACCESS_KEY_ID'] ??= 'test:tester';
  env['AWS_SECRET_ACCESS_KEY'] ??= 'testing';
  env['ARCHIVER_STAGE'] ??= 'local';
  if (env['AWS_ENDPOINT_URL_SQS'] !== undefined) env['AWS_ENDPOINT_URL_SNS'] ??= env['AWS_ENDPOINT_URL_SQS'];
  // No Secrets Manager locally: the Huawei credentials come from the environment (GES_AUTH_TOKEN, HWC_*).
  delete env['HWC_SECRET_ID'];
  env['AWS_LAMBDA_FUNCTION_NAME'] ??= `ges-archiver-local-${fn}`;
}

/** Any HTTP answer will do: something is listening. */
async function reachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

const START_STACK = 'start it with `scripts/invoke-local stack` (in another terminal) and export what it prints';

/** The local endpoints the function needs: set, local, and answering. */
async function checkLocalStack(env: NodeJS.ProcessEnv, fn: FunctionName, spec: FunctionSpec): Promise<void> {
  const needed: Array<[string, string]> = [['AWS_ENDPOINT_URL_S3', 'S3 (OpenStack Swift)']];
  if (spec.sqs) needed.push(['AWS_ENDPOINT_URL_SQS', 'SQS (fauxqs)']);
  if (env['ALERT_TOPIC_ARN']) needed.push(['AWS_ENDPOINT_URL_SNS', 'SNS (fauxqs)']);
  if (spec.ges) needed.push(['GES_ENDPOINT', 'GES (the emulator)']);
  for (const [name, what] of needed) {
    const value = env[name];
    if (value === undefined || value === '') fail(`${name} is not set: ${fn} needs the local ${what}; ${START_STACK}. (invoke-local never talks to AWS.)`);
    let host: string;
    try {
      host = new URL(value).hostname;
    } catch {
      fail(`${name} is not a URL (${value})`);
    }
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) fail(`${name} points at ${host}, not at the local stack: invoke-local runs only against local servers (${START_STACK})`);
    if (!(await reachable(value))) fail(`nothing answers at ${value} (${name}, the local ${what}): is the local stack running? ${START_STACK}`);
  }
}

/** Extracts the function's bundle (and its source map) from the zip into a fresh directory. */
function extractBundle(packageDir: string, fn: FunctionName, spec: FunctionSpec): string {
  const zip = join(packageDir, `${fn}.zip`);
  if (!existsSync(zip)) fail(`no built bundle at ${zip}: run \`npm run package\` first (invoke-local runs the bundle Lambda runs, not the TypeScript sources)`);
  const dir = mkdtempSync(join(tmpdir(), `ges-invoke-${fn}-`));
  const target = join(dir, spec.file);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, readZipEntry(zip, spec.file));
  try {
    writeFileSync(`${target}.map`, readZipEntry(zip, `${spec.file}.map`));
  } catch {
    // A bundle without its source map still runs; stack traces point into the bundle.
  }
  return target;
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** Runs the handler once, with stdout (the EMF metric lines) sent to stderr so that stdout carries only results. */
async function invoke(handler: Handler, fn: FunctionName, event: unknown, timeoutS: number): Promise<unknown> {
  const deadline = Date.now() + timeoutS * 1000;
  const context = {
    functionName: `ges-archiver-local-${fn}`, awsRequestId: randomUUID(), functionVersion: '$LATEST',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  const stdoutWrite = Object.getOwnPropertyDescriptor(process.stdout, 'write');
  Object.defineProperty(process.stdout, 'write', { configurable: true, writable: true, value: process.stderr.write.bind(process.stderr) });
  try {
    return await handler(event, context);
  } finally {
    if (stdoutWrite) Object.defineProperty(process.stdout, 'write', stdoutWrite);
    else delete (process.stdout as { write?: unknown }).write;
  }
}

function printResult(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result ?? null, null, 2)}\n`);
}

/** One invocation per waiting message, as the SQS event source would (batch size 1). */
async function drain(handler: Handler, fn: FunctionName, queueUrl: string, timeoutS: number): Promise<number> {
  const sqs = new SQSClient({});
  let failed = 0;
  try {
    for (;;) {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      const m = res.Messages?.[0];
      if (m === undefined) return failed;
      const record = {
        messageId: m.MessageId, receiptHandle: m.ReceiptHandle, body: m.Body ?? '',
        attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1' }, eventSource: 'aws:sqs',
      };
      const result = await invoke(handler, fn, { Records: [record] }, timeoutS) as { batchItemFailures?: unknown[] } | undefined;
      printResult({ messageId: m.MessageId, result });
      if ((result?.batchItemFailures?.length ?? 0) > 0) failed += 1;
      else await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  } finally {
    sqs.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      event: { type: 'string' }, sample: { type: 'boolean' }, drain: { type: 'boolean' },
      timeout: { type: 'string' }, package: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const fn = positionals[0];
  if (positionals.length !== 1 || fn === undefined || !(fn in FUNCTIONS)) fail(`name one function: ${Object.keys(FUNCTIONS).join(', ')}\n${USAGE}`);
  const name = fn as FunctionName;
  const spec: FunctionSpec = FUNCTIONS[name];
  if (values.event !== undefined && values.sample) fail('give --event FILE or --sample, not both');
  const timeoutS = values.timeout === undefined ? 900 : Number(values.timeout);
  if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 900) fail(`--timeout must be a whole number of seconds from 1 to 900 (got ${values.timeout})`);
  if (values.drain && (values.event !== undefined || values.sample)) fail('--drain takes its events from the queue: leave out --event and --sample');
  if (values.drain && spec.queueVar === undefined) fail(`--drain is for the SQS-fed functions (copyWorker, drillWorker), not ${name}`);

  const env = process.env;
  localEnv(env, name);
  await checkLocalStack(env, name, spec);
  const queueUrl = spec.queueVar === undefined ? undefined : env[spec.queueVar];
  if (values.drain && (queueUrl === undefined || queueUrl === '')) fail(`--drain reads ${spec.queueVar}, which is not set`);

  let event: unknown;
  if (!values.drain) {
    const eventFile = values.event === undefined ? join(root, 'scripts/lambda-local/events', `${name}.json`) : resolve(values.event);
    try {
      event = JSON.parse(readFileSync(eventFile, 'utf8'));
    } catch (err) {
      fail(`cannot read the event ${eventFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const bundle = extractBundle(resolve(values.package ?? join(root, '.serverless')), name, spec);
  try {
    const { handler } = await import(pathToFileURL(bundle).href) as { handler?: Handler };
    if (typeof handler !== 'function') fail(`${bundle} exports no handler: rebuild with \`npm run package\``);
    if (values.drain) return (await drain(handler, name, queueUrl!, timeoutS)) > 0 ? 1 : 0;
    printResult(await invoke(handler, name, event, timeoutS));
    return 0;
  } finally {
    rmSync(dirname(dirname(bundle)), { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`invoke-local: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  // The handler threw: its error's code and message as the result (the stack is in its own log line).
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const error = { code: text(e.code) ?? text(e.name) ?? 'Error', message: text(e.message) ?? 'unknown error' };
  printResult({ error });
  process.stderr.write(`invoke-local: the handler failed: ${error.code}: ${error.message}\n`);
  process.exitCode = 1;
});
