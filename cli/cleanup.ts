import type { Command } from 'commander';
import type { CleanupReport } from '../lib/archive/cleanup.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import type { CliIo } from './io.js';
import type { OutputFlags } from './plumbing.js';

interface CleanupCliOptions extends OutputFlags {
  olderThan: string;
  dryRun?: boolean;
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Younger uploads may belong to a copy running right now. */
const MIN_AGE_MS = UNIT_MS.h;
const DEFAULT_AGE = '7d';

/** `30m`, `12h`, `7d`, `2w`: at least one hour. */
export function parseAge(value: string, option = '--older-than'): number {
  const match = /^(\d{1,6})([mhdw])$/.exec(value.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : Number.NaN;
  if (!(ms >= MIN_AGE_MS)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid,
      `${option} must be an age of at least 1h, as a whole number and a unit m, h, d or w (e.g. 12h, 7d); got ${JSON.stringify(value)}`);
  }
  return ms;
}

export function formatCleanupReport(report: CleanupReport, bucket: string): string {
  const out: string[] = [];
  const verb = report.dryRun ? 'would abort' : 'aborted';
  out.push(`${report.dryRun ? 'Dry run: nothing was aborted or deleted. ' : ''}Cleanup of s3://${bucket}, older than ${report.olderThan}`);
  for (const u of report.uploads) out.push(`  ${verb.padEnd(12)}upload ${u.key} (started ${u.initiated})`);
  for (const s of report.state) {
    out.push(`  ${(report.dryRun ? 'would remove' : 'removed').padEnd(12)}_state of ${s.graphId}/${s.backupId} (${s.reason}): ${s.objects} object${s.objects === 1 ? '' : 's'}`
      + `${s.uploadsAborted > 0 ? `, ${s.uploadsAborted} upload${s.uploadsAborted === 1 ? '' : 's'} aborted` : ''}`);
  }
  for (const k of report.kept) out.push(`  ${'kept'.padEnd(12)}_state of ${k.graphId}/${k.backupId} (not archived, changed ${k.lastModified}: may be in progress)`);
  for (const e of report.errors) out.push(`  ${'FAILED'.padEnd(12)}${e.what}: ${e.code}: ${e.message}`);
  out.push(`${report.uploads.length} upload${report.uploads.length === 1 ? '' : 's'} ${verb}, ${report.state.length} state folder${report.state.length === 1 ? '' : 's'} `
    + `${report.dryRun ? 'to remove' : 'removed'}, ${report.kept.length} kept, ${report.errors.length} failed.`);
  return `${out.join('\n')}\n`;
}

async function cleanupCommand(io: CliIo, opts: CleanupCliOptions): Promise<number> {
  const olderThanMs = parseAge(opts.olderThan);
  // Imported here, not at the top: `ges-archiver --help` does not load the AWS SDK (cli/main.ts).
  const [{ cleanupArchive }, { checkArchiveBucket }, { openStorageSession }] = await Promise.all([
    import('../lib/archive/cleanup.js'), import('../lib/archive/preflight.js'), import('./storage-session.js'),
  ]);
  const session = openStorageSession(io, opts);
  try {
    await checkArchiveBucket(session.deps, { write: false, signal: session.signal });
    const report = await cleanupArchive(session.deps, { olderThanMs, dryRun: opts.dryRun === true, signal: session.signal });
    if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(formatCleanupReport(report, session.config.archive.bucket));
    return report.errors.length > 0 ? 1 : 0;
  } finally {
    session.dispose();
  }
}

/** `ges-archiver cleanup`: registered by cli/main.ts. */
export function registerCleanupCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('cleanup')
    .description('abort old incomplete multipart uploads and remove leftover working state under _state/ (no GES credentials needed)')
    .option('--older-than <age>', 'age of what counts as abandoned: 12h, 7d, 2w... (at least 1h)', DEFAULT_AGE)
    .option('--dry-run', 'abort and delete nothing; report what would be')
    .addHelpText('after', `
Aborts the incomplete multipart uploads under ARCHIVE_PREFIX started before the age, and
removes the _state/{graph}/{backup}/ folder of every backup that is archived (its
manifest.json exists) or abandoned (nothing in the folder changed within the age); uploads
named by its checkpoints are aborted first. Younger state of a backup that is not archived is
kept: a run or a fan-out may be working on it. Archived files, manifest.json and the run
reports under _runs/ are never touched. For stores without lifecycle rules, run it now and then
(e.g. daily, from cron); on AWS, add the lifecycle rule shown in the README as well.
--json prints one document: { dryRun, olderThan, uploads, state, kept, errors }.
Needs only ARCHIVE_BUCKET (and ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE, the AWS SDK variables).
Exit status: 0 done; 1 something could not be aborted or removed (listed as FAILED);
2 invalid configuration or arguments, or the bucket cannot be used.`)
    .action(async (_opts: CleanupCliOptions, cmd: Command) => {
      setExitCode(await cleanupCommand(io, cmd.optsWithGlobals<CleanupCliOptions>()));
    });
}
