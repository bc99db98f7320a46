import type { BackupReport, RunReport } from '../lib/archive/types.js';
import { redactString, redactValue } from '../lib/redact.js';

/**
 * Human-readable sizes, rates and the run summary printed by the CLI. Everything printed
 * passes through the logger's redaction (lib/log.ts): error messages may quote what GES or
 * S3 said, and nothing secret may reach stdout either.
 */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** A backup line starts with its status in a column this wide ('cancelled' and a space); details below align with the id. */
const STATUS_WIDTH = 10;
const DETAIL_INDENT = ' '.repeat(2 + STATUS_WIDTH);

function line(b: BackupReport): string {
  const what = `${b.graphId}/${b.backupId}${b.backupName ? ` (${b.backupName})` : ''}`;
  const size = b.status === 'skipped' ? (b.reason?.message ?? 'already archived') : `${b.files} file${b.files === 1 ? '' : 's'}, ${formatBytes(b.bytes)}${b.status === 'planned' ? ' (estimated)' : ''}`;
  const took = b.durationMs !== undefined && b.status !== 'skipped' ? `, ${formatDuration(b.durationMs)}` : '';
  const err = b.error && b.status !== 'cancelled' ? `\n${DETAIL_INDENT}${b.error.code}: ${b.error.message}` : '';
  return `  ${b.status.padEnd(STATUS_WIDTH)}${what}  ${size}${took}${err}`;
}

/** A dry run's files, one per line under their backup, names aligned, sizes right-aligned. */
function fileLines(b: BackupReport): string {
  if (!b.fileList || b.fileList.length === 0) return '';
  const sizes = b.fileList.map((f) => (f.bytes === null ? '?' : formatBytes(f.bytes)));
  const nameWidth = Math.max(...b.fileList.map((f) => f.name.length));
  const sizeWidth = Math.max(...sizes.map((s) => s.length));
  return b.fileList.map((f, i) => `\n${DETAIL_INDENT}${f.name.padEnd(nameWidth)}  ${sizes[i]!.padStart(sizeWidth)}`).join('');
}

export function formatRunSummary(report: RunReport, bucket: string): string {
  const t = report.totals;
  const out: string[] = [];
  out.push(report.dryRun ? 'Dry run: nothing was downloaded or written.' : `Run ${report.runId}`);
  if (report.backups.length === 0) out.push('  (no backups selected)');
  for (const b of report.backups) out.push(line(b) + fileLines(b));
  const counts = report.dryRun
    ? `${t.planned} planned, ${t.skipped} skipped, ${t.failed} failed`
    : `${t.archived} archived, ${t.queued > 0 ? `${t.queued} queued, ` : ''}${t.skipped} skipped, ${t.failed} failed${t.cancelled > 0 ? `, ${t.cancelled} cancelled (run it again to continue)` : ''}`;
  out.push(`${counts}; ${t.files} files, ${formatBytes(t.bytes)} in ${formatDuration(report.durationMs)}.`);
  const archived = report.backups.filter((b) => b.manifestKey);
  if (archived.length > 0) {
    out.push('Archived to:');
    for (const b of archived) out.push(`  s3://${bucket}/${b.manifestKey!.replace(/manifest\.json$/, '')}`);
  }
  if (report.reportKey) out.push(`Run report: s3://${bucket}/${report.reportKey}`);
  else if (!report.dryRun) out.push(`Run report: NOT stored in s3://${bucket}/ (the error is logged above); this summary is the only record of the run.`);
  return redactString(`${out.join('\n')}\n`);
}

/** Prints one JSON document (the `--json` output), redacted like the logs. */
export function writeJson(stream: NodeJS.WritableStream, doc: unknown): void {
  stream.write(`${JSON.stringify(redactValue(doc), null, 2)}\n`);
}

/** The `--json` document (docs/contract.md): `backups[]` plus run metadata, redacted like the logs. */
export function jsonReport(report: RunReport): Record<string, unknown> {
  return redactValue({
    runId: report.runId,
    dryRun: report.dryRun,
    startedAt: report.startedAt,
    finishedAt: report.finishedAt,
    ...(report.reportKey ? { reportKey: report.reportKey } : {}),
    totals: report.totals,
    backups: report.backups.map((b) => ({
      graphId: b.graphId,
      backupId: b.backupId,
      status: b.status,
      files: b.files,
      bytes: b.bytes,
      ...(b.fileList === undefined ? {} : { fileList: b.fileList }),
      ...(b.backupName === undefined ? {} : { backupName: b.backupName }),
      ...(b.durationMs === undefined ? {} : { durationMs: b.durationMs }),
      ...(b.manifestKey === undefined ? {} : { manifestKey: b.manifestKey }),
      ...(b.error ? { error: { code: b.error.code, message: b.error.message } } : {}),
      ...(b.reason ? { reason: { code: b.reason.code, message: b.reason.message } } : {}),
    })),
  }) as Record<string, unknown>;
}
