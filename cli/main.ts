import { readFileSync } from 'node:fs';
import { Argument, Command, CommanderError, Option } from 'commander';
import type { RunManifest } from '../lib/archive/run-manifest.js';
import type { RunReport } from '../lib/archive/types.js';
import type { Config, ConfigOverrides } from '../lib/config.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../lib/errors.js';
import type { Runtime } from '../lib/app/runtime.js';
import { BWLIMIT, describeSize, FILE_CONCURRENCY, parseBwlimit, parsePartSize, parseWhole, PART_SIZE_MIB, STREAMS, type Parsed } from '../lib/settings.js';
import { registerCleanupCommand } from './cleanup.js';
import { formatRunSummary, jsonReport } from './format.js';
import type { CliIo } from './io.js';
import { registerListCommand } from './list.js';
import type { OutputFlags } from './plumbing.js';
import type { Progress } from './progress.js';
import { registerPruneCommand } from './prune.js';
import { registerRestoreCommand } from './restore.js';
import { registerVerifyCommand } from './verify.js';

interface CommonOptions extends OutputFlags {
  dryRun?: boolean;
  force?: boolean;
  /** --transfers, --streams, --part-size, --bwlimit: raw; parsed by copyOverrides(). */
  transfers?: string;
  streams?: string;
  partSize?: string;
  bwlimit?: string;
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

/** A flag's value through its lib/settings.ts parser; a bad one is ARGS_INVALID naming the flag and the range. */
function flag<T>(value: string | undefined, name: string, parse: (value: string, name: string) => Parsed<T>): T | undefined {
  if (value === undefined) return undefined;
  const r = parse(value, name);
  if (!r.ok) throw new UsageError(r.message);
  return r.value;
}

/** --transfers, --streams, --part-size and --bwlimit over their variables (checked before anything else). */
function copyOverrides(opts: CommonOptions): ConfigOverrides {
  return {
    files: flag(opts.transfers, FILE_CONCURRENCY.flag, (v, n) => parseWhole(v, FILE_CONCURRENCY, n)),
    streams: flag(opts.streams, STREAMS.flag, (v, n) => parseWhole(v, STREAMS, n)),
    partSizeBytes: flag(opts.partSize, PART_SIZE_MIB.flag, parsePartSize),
    maxBytesPerSecond: flag(opts.bwlimit, BWLIMIT.flag, parseBwlimit),
  };
}

/**
 * Opens a run's session, and checks the archive bucket first (exit 2 when it fails), before GES
 * is asked for anything. The check runs while the rest of the session loads (the GES client, the
 * copier and their modules, about a third of the start) instead of after it.
 */
async function openCheckedSession(io: CliIo, opts: CommonOptions): Promise<Session> {
  const overrides = copyOverrides(opts);
  const [{ loadConfig }, { createS3Client, withRetryLogging }, { createRetryPolicy }, { onInterrupt, createCliOutput }, { checkArchiveBucket }] = await Promise.all([
    import('../lib/config.js'), import('../lib/app/aws-clients.js'), import('../lib/retry.js'), import('./plumbing.js'), import('../lib/archive/preflight.js'),
  ]);
  const config = loadConfig(io.env, overrides);
  const { logger, progress } = createCliOutput(io, { flags: opts, progress: true, defaultLevel: 'info' });
  const runtimeModule = import('../lib/app/runtime.js');
  const s3 = createS3Client(config);
  const retry = createRetryPolicy();
  const interrupt = onInterrupt(logger, 'stopping the copies; what is stored is kept for the next run');
  let runtime: Runtime;
  try {
    await checkArchiveBucket({ s3, retry: withRetryLogging(retry, logger), config }, { write: opts.dryRun !== true, signal: interrupt.signal });
    runtime = (await runtimeModule).createRuntime(config, logger, { s3, retry });
  } catch (err) {
    runtimeModule.catch(() => undefined);
    interrupt.dispose();
    progress.stop();
    s3.destroy();
    throw err;
  }
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
  const { publishRunAlert } = await import('../lib/alerts/alert.js');
  await publishRunAlert({ sns: session.runtime.sns, topicArn: session.config.alertTopicArn, logger: session.runtime.logger, retry: session.runtime.retry }, report, { source: 'cli' });
}

function printReport(io: CliIo, report: RunReport, config: Config, opts: CommonOptions): void {
  if (opts.json) io.stdout.write(`${JSON.stringify(jsonReport(report), null, 2)}\n`);
  else io.stdout.write(formatRunSummary(report, config.archive.bucket));
}

/** Runs one manifest in a session and prints its report; `run` and `archive` differ only in the manifest. */
async function runAndReport(io: CliIo, opts: CommonOptions, trigger: string, manifestOf: (session: Session) => Promise<RunManifest>): Promise<number> {
  const runModule = import('../lib/archive/run.js');
  runModule.catch(() => undefined);
  // The bucket first, before the manifest and before GES is asked for anything (exit 2 when it fails).
  const session = await openCheckedSession(io, opts);
  try {
    const { exitCodeOf, runManifest } = await runModule;
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
  // `--backup latest` is the manifest's `latest`: the same planner picks the newest success backup.
  const { validateRunManifest } = await import('../lib/archive/run-manifest.js');
  const backups = opts.backup === 'latest' ? 'latest' : [opts.backup];
  const manifest = validateRunManifest({ version: 1, graphs: [{ graphId: opts.graph, backups }] }, 'from --graph/--backup');
  return runAndReport(io, opts, 'manual', () => Promise.resolve(manifest));
}

/** What `run` and `archive` share: the dry run and the copy controls (each over its variable). */
function common(cmd: Command): Command {
  const range = (s: typeof FILE_CONCURRENCY): string => `${s.min}-${s.max}, default ${s.default}; over ${s.variable}`;
  return cmd
    .option('--dry-run', 'download and write nothing; list the backups and files that would be archived, with their sizes')
    .option('--transfers <n>', `files copied at once (${range(FILE_CONCURRENCY)})`)
    .option('--streams <n>', `download connections per file (${range(STREAMS)})`)
    .option('--part-size <size>', `minimum part size, e.g. 16M or 64MiB (${PART_SIZE_MIB.min}M-${PART_SIZE_MIB.max}M, default ${PART_SIZE_MIB.default}M; over ${PART_SIZE_MIB.variable})`)
    .option('--bwlimit <rate>', `total download rate of the run, e.g. 10M = 10 MiB/s, 512k, 1G, or off (${describeSize(BWLIMIT.min)}/s and up; over ${BWLIMIT.variable})`);
}

/** Defined once on the program: accepted before or after the command's name (commander passes them down). */
function globalOptions(program: Command): Command {
  return program
    .option('--json', 'print exactly one JSON document on stdout (logs and progress stay on stderr)')
    .option('-v, --verbose', 'debug logging and stack traces on stderr')
    .option('-q, --quiet', 'only errors on stderr: no progress, no info or warn lines')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (over LOG_LEVEL, -q and -v)')
    .option('--log-format <format>', 'pretty or json (over LOG_FORMAT)')
    .option('--stats-json', 'progress as one JSON line on stderr every second and a final one (bytes, rate, files, elapsed, eta)')
    .addOption(new Option('--no-progress', 'no progress bar or progress lines'));
}

/**
 * A reader that goes away (`ges-archiver run 2>&1 | head -1`) closes the pipe: every later write
 * fails (EPIPE, then "write after destroy"). The run goes on: what it archives, and its report
 * under `_runs/`, do not depend on anyone reading; the exit status is the run's. Any other
 * stream error is not expected and still ends the process.
 */
const READER_GONE = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);
function outliveReader(stream: NodeJS.WritableStream): void {
  if (typeof stream.on !== 'function') return;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (!READER_GONE.has(err.code ?? '')) throw err;
  });
}

/**
 * `ges-archiver`: the command line (docs/contract.md, "Command line"). stdout carries only the
 * result (the summary, or exactly one JSON document with --json); logs and progress go to
 * stderr. Exit status: 0 all archived or skipped, 1 a backup failed, 2 invalid
 * configuration, arguments or manifest.
 *
 * Start-up time: `--help` and `--version` load only this file, commander and the command
 * definitions. Everything heavy (the AWS SDK, undici, zod, pino) is imported inside the
 * command that uses it; a test checks that the built entry chunk holds none of it.
 */
export async function main(io: CliIo): Promise<number> {
  outliveReader(io.stdout);
  outliveReader(io.stderr);
  let exitCode = 0;
  const program = new Command('ges-archiver')
    .description('Archive Huawei Cloud GES graph backups into S3, verified to the byte.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(run ges-archiver --help for usage)')
    .configureHelp({ showGlobalOptions: true });
  globalOptions(program);

  common(program.command('run'))
    .description('one scheduled run: archive what the manifest names')
    .option('--manifest <location>', 'manifest file path or s3://bucket/key (default: MANIFEST_URI)')
    .action(async (_opts: unknown, cmd: Command) => {
      exitCode = await runCommand(io, cmd.optsWithGlobals<CommonOptions & { manifest?: string }>());
    });

  common(program.command('archive'))
    .description('archive one backup, by hand')
    .requiredOption('--graph <graphId>', 'graph id')
    .requiredOption('--backup <backupId>', 'backup id, or latest: the newest success backup of the graph')
    .option('--force', 'archive it again even when manifest.json exists (the repair after verify found damage)')
    .action(async (_opts: unknown, cmd: Command) => {
      exitCode = await archiveCommand(io, cmd.optsWithGlobals<CommonOptions & { graph: string; backup: string }>());
    });

  registerVerifyCommand(program, io, (code) => { exitCode = code; });
  registerListCommand(program, io, (code) => { exitCode = code; });
  registerCleanupCommand(program, io, (code) => { exitCode = code; });
  registerRestoreCommand(program, io, (code) => { exitCode = code; });
  registerPruneCommand(program, io, (code) => { exitCode = code; });

  program.command('completion')
    .description('print a shell completion script: source <(ges-archiver completion bash)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .addHelpText('after', `
bash: add \`source <(ges-archiver completion bash)\` to ~/.bashrc.
zsh:  add \`source <(ges-archiver completion zsh)\` to ~/.zshrc after compinit, or save the
      output as _ges-archiver in a directory of your $fpath.
The script is generated from the command definitions, so it completes this version's commands
and options.`)
    .action(async (shell: 'bash' | 'zsh') => {
      const { completionScript } = await import('./completion.js');
      io.stdout.write(completionScript(program, shell));
    });

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
