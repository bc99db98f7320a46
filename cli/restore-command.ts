import type { S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { loadConfig, loadRestoreTargetConfig, loadStorageConfig } from '../lib/config.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../lib/errors.js';
import { createGesClient } from '../lib/ges/client.js';
import { redactString } from '../lib/redact.js';
import { parseRestoreTarget, targetLabel } from '../lib/restore/target.js';
import type { RestoreEvent, RestoreReport, RestoreTarget } from '../lib/restore/types.js';
import { createRetryPolicy } from '../lib/retry.js';
import { createRestoreTargetS3Client, createS3Client } from '../lib/app/aws-clients.js';
import { formatBytes } from './format.js';
import type { CliIo } from './io.js';
import { createCliOutput, onInterrupt, type OutputFlags } from './plumbing.js';
import { checkId } from './storage-session.js';

export interface RestoreCliOptions extends OutputFlags {
  graph: string;
  backup: string;
  to: string;
  import?: boolean;
  importGraph?: string;
  importTimeout?: string;
  pollInterval?: string;
  force?: boolean;
  concurrency?: string;
}

const USAGE_CODES = new Set<string>([ErrorCodes.ArgsInvalid, ErrorCodes.ConfigInvalid]);

function argsError(message: string): ArchiverError {
  return new ArchiverError(ErrorCodes.ArgsInvalid, message);
}

function parseNumber(value: string | undefined, option: string, min: number, max: number, dflt: number, whole: boolean): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw argsError(`${option} must be ${whole ? 'a whole number' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return n;
}

/** The human summary on stdout. */
export function formatRestoreReport(report: RestoreReport): string {
  const out: string[] = [];
  const restored = report.files.filter((f) => f.status === 'restored');
  const kept = report.files.filter((f) => f.status === 'kept');
  const bytes = report.files.reduce((n, f) => n + f.bytes, 0);
  out.push(`${report.error ? 'Restore FAILED' : 'Restored'}: backup ${report.backupId} of graph ${report.graphId} to ${report.target}: `
    + `${restored.length} restored, ${kept.length} kept (already there and verified), ${formatBytes(bytes)}.`);
  const width = Math.max(0, ...report.files.map((f) => f.name.length));
  for (const f of report.files) out.push(`  ${f.status.padEnd(9)}${f.name.padEnd(width)}  ${formatBytes(f.bytes)}  sha256 ${f.sha256}`);
  for (const f of report.failed ?? []) out.push(`  FAILED   ${f.name}: ${f.code}: ${redactString(f.message)}`);
  if (report.sha256sums) out.push(`Check it without this tool: cd ${report.target} && sha256sum -c SHA256SUMS`);
  if (report.import) {
    const job = report.import.jobId === undefined ? '' : ` job ${report.import.jobId}`;
    out.push(`GES import of ${report.import.importPath} into graph ${report.import.graphId}:${job} ${report.import.status}`);
  }
  if (report.error) out.push(`${report.error.code}: ${redactString(report.error.message)}`);
  return `${out.join('\n')}\n`;
}

function importLine(event: Extract<RestoreEvent, { type: 'import-poll' }>): string {
  const { job, polls, elapsedMs } = event.poll;
  const progress = job.progress === undefined ? '' : `, progress ${job.progress}`;
  return `import: GES job ${job.jobId} ${job.status}${progress} (poll ${polls}, ${Math.round(elapsedMs / 1000)} s)`;
}

export async function restoreCommand(io: CliIo, opts: RestoreCliOptions): Promise<number> {
  let target: RestoreTarget | undefined;
  const reportOf = (error: ArchiverError): RestoreReport => ({
    graphId: opts.graph, backupId: opts.backup, target: target ? targetLabel(target) : opts.to, files: [],
    error: { code: error.code, message: redactString(error.message) },
  });
  const print = (report: RestoreReport): void => {
    if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(formatRestoreReport(report));
  };

  const { logger, progress } = createCliOutput(io, { flags: opts, progress: true, defaultLevel: 'info' });
  const closers: (() => Promise<void> | void)[] = [];
  let interrupt: { signal: AbortSignal; dispose(): void } | undefined;
  try {
    checkId(opts.graph, '--graph');
    checkId(opts.backup, '--backup');
    checkId(opts.importGraph, '--import-graph');
    target = parseRestoreTarget(opts.to);
    const concurrency = parseNumber(opts.concurrency, '--concurrency', 1, 32, 4, true);
    const timeoutMin = parseNumber(opts.importTimeout, '--import-timeout', 1, 24 * 60, 60, false);
    const pollSeconds = parseNumber(opts.pollInterval, '--poll-interval', 0.05, 600, 15, false);
    if (opts.import && target.kind !== 's3') throw argsError('--import needs an s3://bucket/prefix/ target: GES imports backups from OBS');
    if (!opts.import && (opts.importGraph !== undefined || opts.importTimeout !== undefined || opts.pollInterval !== undefined)) {
      throw argsError('--import-graph, --import-timeout and --poll-interval apply only with --import');
    }

    // Without --import only the bucket is needed (like verify); with it, GES too.
    const fullConfig = opts.import ? loadConfig(io.env) : undefined;
    const config = fullConfig ?? loadStorageConfig(io.env);
    const targetConfig = target.kind === 's3' ? loadRestoreTargetConfig(io.env) : undefined;
    const retry = createRetryPolicy();
    const s3 = createS3Client(config);
    closers.push(() => s3.destroy());
    let targetS3: S3Client | undefined;
    if (targetConfig !== undefined) {
      const client = createRestoreTargetS3Client(targetConfig);
      closers.push(() => client.destroy());
      targetS3 = client;
    }
    let ges: ReturnType<typeof createGesClient> | undefined;
    if (fullConfig !== undefined) {
      const dispatcher = new Agent({ connections: 8, headersTimeout: 60_000, bodyTimeout: 60_000 });
      closers.push(() => dispatcher.close());
      ges = createGesClient({ config: fullConfig.ges, logger: logger.child({ component: 'ges' }), retry, dispatcher });
    }
    interrupt = onInterrupt(logger, 'stopping the restore and cleaning up');

    // Loaded here, not at start-up: lib-storage and the restore engine are not needed for --help.
    const { restoreBackup } = await import('../lib/restore/restore.js');
    const report = await restoreBackup({ s3, targetS3, ges, config, logger, retry }, {
      graphId: opts.graph,
      backupId: opts.backup,
      target,
      force: opts.force === true,
      concurrency,
      signal: interrupt.signal,
      ...(opts.import ? { import: { graphId: opts.importGraph, timeoutMs: timeoutMin * 60_000, pollIntervalMs: pollSeconds * 1000 } } : {}),
      onEvent: (event) => {
        if (event.type === 'import-poll') progress.log(importLine(event));
        else if (event.type === 'import-started') progress.log(`import: GES started job ${event.jobId} for ${event.importPath}`);
        else progress.onEvent(event);
      },
    });
    progress.stop();
    print(report);
    return report.error === undefined ? 0 : 1;
  } catch (err) {
    progress.stop();
    const e = toArchiverError(err);
    print(reportOf(e));
    if (!opts.json) io.stderr.write(`ges-archiver: ${redactString(e.message)}\n`);
    return USAGE_CODES.has(e.code) ? 2 : 1;
  } finally {
    interrupt?.dispose();
    for (const close of closers) await close();
  }
}

/** `ges-archiver restore`: registered by cli/main.ts. */
