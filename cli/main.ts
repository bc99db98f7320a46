import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { RunManifest } from '../lib/archive/run-manifest.js';
import type { RunReport } from '../lib/archive/types.js';
import type { Config } from '../lib/config.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../lib/errors.js';
import type { Runtime } from '../lib/runtime.js';
import { registerCleanupCommand } from './cleanup.js';
import { formatRunSummary, jsonReport } from './format.js';
import { registerListCommand } from './list.js';
import type { Progress } from './progress.js';
import { registerPruneCommand } from './prune.js';
import { registerRestoreCommand } from './restore.js';
import { registerVerifyCommand } from './verify.js';

/**
 * `ges-archiver`: the command line (CONTRACT.md, "Command line"). stdout carries only the
 * result (the summary, or exactly one JSON document with --json); logs and progress go to
 * stderr. Exit status: 0 all archived or skipped, 1 a backup failed, 2 invalid
 * configuration, arguments or manifest.
 *
 * Start-up time: `--help` and `--version` load only this file, commander and the command
 * definitions. Everything heavy (the AWS SDK, undici, zod, pino) is imported inside the
 * command that uses it; a test checks that the built entry chunk holds none of it.
 */
export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

interface CommonOptions {
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  progress?: boolean;
  force?: boolean;
}

class UsageError extends ArchiverError {
  constructor(message: string) {
    super(ErrorCodes.ArgsInvalid, message);
  }
}

/** Exit 2: nothing was copied because the input, or the bucket checked before anything else, is wrong. */
const USAGE_CODES = new Set<string>([ErrorCodes.ArgsInvalid, ErrorCodes.ConfigInvalid, ErrorCodes.ManifestInvalid, ErrorCodes.BucketUnavailable]);

/** Set to the package version by scripts/build-cli.js; not defined when the sources run (tests). */
declare const GES_ARCHIVER_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof GES_ARCHIVER_VERSION === 'string') return GES_ARCHIVER_VERSION;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Session {
  config: Config;
  runtime: Runtime;
  progress: Progress;
  signal: AbortSignal;
  dispose(): Promise<void>;
}

async function openSession(io: CliIo, opts: CommonOptions): Promise<Session> {
  const [{ loadConfig }, { createRuntime }, { onInterrupt, createCliOutput }] = await Promise.all([
    import('../lib/config.js'), import('../lib/runtime.js'), import('./plumbing.js'),
  ]);
  const config = loadConfig(io.env);
  const { logger, progress } = createCliOutput(io, { verbose: opts.verbose, progress: opts.progress !== false, defaultLevel: 'info' });
  const runtime = createRuntime(config, logger);
  const interrupt = onInterrupt(logger, 'stopping the copies; what is stored is kept for the next run');
  return {
    config,
    runtime,
    progress,
    signal: interrupt.signal,
    async dispose() {
      interrupt.dispose();
      progress.stop();
      await runtime.close();
    },
  };
}

/** With ALERT_TOPIC_ARN set, a failed backup alerts from the CLI too (never for a dry run). */
async function alertOnFailure(session: Session, report: RunReport): Promise<void> {
  if (report.dryRun) return;
  const { publishRunAlert } = await import('../lib/alerts/index.js');
  await publishRunAlert({ sns: session.runtime.sns, topicArn: session.config.alertTopicArn, logger: session.runtime.logger, retry: session.runtime.retry }, report, { source: 'cli' });
}

function printReport(io: CliIo, report: RunReport, config: Config, opts: CommonOptions): void {
  if (opts.json) io.stdout.write(`${JSON.stringify(jsonReport(report), null, 2)}\n`);
  else io.stdout.write(formatRunSummary(report, config.archive.bucket));
}

/** Runs one manifest in a session and prints its report; `run` and `archive` differ only in the manifest. */
async function runAndReport(io: CliIo, opts: CommonOptions, trigger: string, manifestOf: (session: Session) => Promise<RunManifest>): Promise<number> {
  const session = await openSession(io, opts);
  try {
    const [{ exitCodeOf, runManifest }, { checkArchiveBucket }] = await Promise.all([import('../lib/archive/run.js'), import('../lib/archive/preflight.js')]);
    // The bucket first, before the manifest and before GES is asked for anything (exit 2 when it fails).
    await checkArchiveBucket(session.runtime, { write: opts.dryRun !== true, signal: session.signal });
    const manifest = await manifestOf(session);
    const report = await runManifest(session.runtime, manifest, {
      dryRun: opts.dryRun ?? false,
      signal: session.signal,
      onEvent: (e) => session.progress.onEvent(e),
      trigger,
      force: opts.force === true,
    });
    session.progress.stop();
    await alertOnFailure(session, report);
    printReport(io, report, session.config, opts);
    return exitCodeOf(report);
  } finally {
    await session.dispose();
  }
}

async function runCommand(io: CliIo, opts: CommonOptions & { manifest?: string }): Promise<number> {
  const location = opts.manifest ?? io.env['MANIFEST_URI'];
  if (!location) throw new UsageError('No manifest: pass --manifest <path|s3://bucket/key> or set MANIFEST_URI');
  const { loadRunManifest } = await import('../lib/archive/run-manifest.js');
  return runAndReport(io, opts, 'cli', (session) => loadRunManifest(location, session.runtime, { signal: session.signal }));
}

async function archiveCommand(io: CliIo, opts: CommonOptions & { graph: string; backup: string }): Promise<number> {
  // The same validation as a manifest entry (ids become key segments), before any session opens.
  const { validateRunManifest } = await import('../lib/archive/run-manifest.js');
  const manifest = validateRunManifest({ version: 1, graphs: [{ graphId: opts.graph, backups: [opts.backup] }] }, 'from --graph/--backup');
  return runAndReport(io, opts, 'manual', () => Promise.resolve(manifest));
}

function common(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'download and write nothing; report what would be archived')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('-v, --verbose', 'debug logging on stderr')
    .addOption(new Option('--no-progress', 'no progress bar or progress lines'));
}

export async function main(io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('ges-archiver')
    .description('Archive Huawei Cloud GES graph backups into S3, verified to the byte.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(run ges-archiver --help for usage)');

  common(program.command('run'))
    .description('one scheduled run: archive what the manifest names')
    .option('--manifest <location>', 'manifest file path or s3://bucket/key (default: MANIFEST_URI)')
    .action(async (opts: CommonOptions & { manifest?: string }) => {
      exitCode = await runCommand(io, opts);
    });

  common(program.command('archive'))
    .description('archive one backup, by hand')
    .requiredOption('--graph <graphId>', 'graph id')
    .requiredOption('--backup <backupId>', 'backup id')
    .option('--force', 'archive it again even when manifest.json exists (the repair after verify found damage)')
    .action(async (opts: CommonOptions & { graph: string; backup: string }) => {
      exitCode = await archiveCommand(io, opts);
    });

  registerVerifyCommand(program, io, (code) => { exitCode = code; });
  registerListCommand(program, io, (code) => { exitCode = code; });
  registerCleanupCommand(program, io, (code) => { exitCode = code; });
  registerRestoreCommand(program, io, (code) => { exitCode = code; });
  registerPruneCommand(program, io, (code) => { exitCode = code; });

  if (io.argv.length === 0) {
    // No command is a usage error (exit 2), with the usage on stderr.
    io.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(io.argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const e = toArchiverError(err);
    const { redactString } = await import('../lib/log.js');
    const json = io.argv.includes('--json');
    if (json) {
      io.stdout.write(`${JSON.stringify({ backups: [], error: { code: e.code, message: redactString(e.message) } }, null, 2)}\n`);
    }
    io.stderr.write(`ges-archiver: ${redactString(e.message)}\n`);
    return USAGE_CODES.has(e.code) ? 2 : 1;
  }
}
