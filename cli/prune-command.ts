import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { redactString } from '../lib/redact.js';
import { parseDuration } from '../lib/prune/duration.js';
import { pruneArchive, pruneExitCode } from '../lib/prune/prune.js';
import type { PruneReport } from '../lib/prune/types.js';
import { formatBytes } from './format.js';
import type { CliIo } from './io.js';
import type { OutputFlags } from './plumbing.js';
import { checkId, openStorageSession } from './storage-session.js';

export interface PruneCliOptions extends OutputFlags {
  keepLast?: string;
  keepWithin?: string;
  graph?: string;
  dryRun?: boolean;
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

export async function pruneCommand(io: CliIo, opts: PruneCliOptions): Promise<number> {
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
