import type { Command } from 'commander';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { redactString } from '../lib/log.js';
import { parseDuration } from '../lib/prune/duration.js';
import { pruneArchive, pruneExitCode } from '../lib/prune/prune.js';
import type { PruneReport } from '../lib/prune/types.js';
import { formatBytes } from './format.js';
import type { CliIo } from './main.js';
import { checkId, openStorageSession } from './storage-session.js';

interface PruneCliOptions {
  keepLast?: string;
  keepWithin?: string;
  graph?: string;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
}

/** --keep-last: required (nothing is ever deleted by default), a whole number of at least 1. */
export function parseKeepLast(value: string | undefined): number {
  if (value === undefined) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, 'prune needs --keep-last <N> (the newest N archived backups of each graph are kept): nothing is ever deleted by default');
  }
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `--keep-last must be a whole number of at least 1 (got ${JSON.stringify(value)}): prune never deletes every backup of a graph`);
  }
  return n;
}

/** The human report on stdout. */
export function formatPruneReport(report: PruneReport): string {
  const out: string[] = [];
  const verb = report.dryRun ? 'would delete' : 'deleted';
  const rules = `keep the last ${report.keepLast}${report.keepWithin ? ` and everything within ${report.keepWithin}` : ''} per graph`;
  out.push(`${report.dryRun ? 'Dry run (nothing deleted): ' : ''}prune: ${rules}.`);
  for (const d of report.deleted) {
    out.push(`  ${verb.padEnd(13)}${d.graphId}/${d.backupId}${d.backupTime ? ` (${d.backupTime})` : ''}  ${d.files} files, ${formatBytes(d.bytes)}`);
  }
  for (const k of report.kept) out.push(`  ${'kept'.padEnd(13)}${k.graphId}/${k.backupId}${k.backupTime ? ` (${k.backupTime})` : ''}  ${k.reasons.join(', ')}`);
  for (const f of report.finished) out.push(`  ${(report.dryRun ? 'would finish' : 'finished').padEnd(13)}${f.graphId}/${f.backupId}  (an earlier prune had started deleting it)`);
  for (const p of [...report.locked, ...report.failed]) out.push(`  ${p.code.padEnd(13)}${p.graphId}/${p.backupId}: ${redactString(p.message)}`);
  const bytes = report.deleted.reduce((n, d) => n + d.bytes, 0);
  out.push(`${report.deleted.length} backup${report.deleted.length === 1 ? '' : 's'} ${verb} (${formatBytes(bytes)}), ${report.kept.length} kept`
    + `${report.locked.length > 0 ? `, ${report.locked.length} locked` : ''}${report.failed.length > 0 ? `, ${report.failed.length} failed` : ''}`
    + `${report.runReports ? `; run reports: ${report.runReports.deleted} ${verb}, ${report.runReports.kept} kept` : ''}.`);
  return `${out.join('\n')}\n`;
}

async function pruneCommand(io: CliIo, opts: PruneCliOptions): Promise<number> {
  const keepLast = parseKeepLast(opts.keepLast);
  const keepWithinMs = opts.keepWithin === undefined ? undefined : parseDuration(opts.keepWithin);
  const graphId = checkId(opts.graph, '--graph');
  const session = openStorageSession(io, opts);
  try {
    const report = await pruneArchive(session.deps, {
      keepLast,
      keepWithinMs,
      keepWithin: opts.keepWithin?.trim(),
      graphId,
      dryRun: opts.dryRun === true,
      signal: session.signal,
    });
    if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(formatPruneReport(report));
    return pruneExitCode(report);
  } finally {
    session.dispose();
  }
}

/** `ges-archiver prune`: registered by cli/main.ts. */
export function registerPruneCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('prune')
    .description('delete archived backups beyond the retention policy (reads and deletes only in the bucket: no GES credentials needed)')
    .option('--keep-last <N>', 'keep the newest N archived backups of each graph (required; at least 1)')
    .option('--keep-within <duration>', 'also keep every backup younger than this (90d, 12h, 2w, 1y); older run reports under _runs/ are deleted too')
    .option('--graph <graphId>', 'only this graph')
    .option('--dry-run', 'delete nothing; report what would be deleted')
    .option('--json', 'print exactly one JSON document on stdout: { kept: [...], deleted: [...], locked: [...], failed: [...] }')
    .option('-v, --verbose', 'debug logging on stderr')
    .addHelpText('after', `
Per graph, keeps the newest N archived backups (by backup time, else archive time) and every
one younger than --keep-within, and deletes the others: manifest.json first (so a half-deleted
backup is never listed as archived), then its files, SHA256SUMS and its _state/. A backup with
an object under S3 Object Lock retention or a legal hold is reported LOCKED and nothing of it is
deleted. A backup whose manifest.json is unusable is kept. Folders without manifest.json
(being archived) are never touched.
Needs only ARCHIVE_BUCKET (and ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE, the AWS SDK variables).
Exit status: 0 the plan was carried out; 1 a backup was locked or could not be deleted;
2 invalid configuration or arguments (no --keep-last), nothing deleted.`)
    .action(async (opts: PruneCliOptions) => {
      setExitCode(await pruneCommand(io, opts));
    });
}
