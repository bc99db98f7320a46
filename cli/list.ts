import type { Command } from 'commander';
import type { ArchivedBackupSummary } from '../lib/catalog/types.js';
import { formatBytes, writeJson } from './format.js';
import type { CliIo } from './io.js';
import type { OutputFlags } from './plumbing.js';

interface ListCliOptions extends OutputFlags {
  graph?: string;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}

/** The human listing: one row per archived backup, unusable manifests after the table. */
export function formatBackupList(backups: ArchivedBackupSummary[], bucket: string, prefix: string): string {
  const valid = backups.filter((b) => b.valid);
  const invalid = backups.filter((b) => !b.valid);
  const out: string[] = [];
  if (backups.length === 0) out.push(`No archived backups in s3://${bucket}/${prefix}`);
  if (valid.length > 0) {
    out.push(...table([
      ['GRAPH', 'BACKUP', 'NAME', 'BACKUP TIME', 'FILES', 'SIZE', 'ARCHIVED AT', 'RUN'],
      ...valid.map((b) => [b.graphId, b.backupId, b.backupName ?? '-', b.backupTime ?? '-', String(b.fileCount), formatBytes(b.totalBytes), b.archivedAt, b.runId ?? '-']),
    ]));
  }
  for (const b of invalid) out.push(`INVALID  ${b.manifestKey}: ${b.problem}`);
  if (backups.length > 0) {
    const bytes = valid.reduce((n, b) => n + b.totalBytes, 0);
    const files = valid.reduce((n, b) => n + b.fileCount, 0);
    out.push(`${valid.length} archived backup${valid.length === 1 ? '' : 's'}, ${files} files, ${formatBytes(bytes)}`
      + `${invalid.length > 0 ? `; ${invalid.length} with an unusable manifest.json` : ''}.`);
    if (valid.some((b) => b.runId)) out.push(`Run reports: s3://${bucket}/${prefix}_runs/<RUN>.json`);
  }
  return `${out.join('\n')}\n`;
}

async function listCommand(io: CliIo, opts: ListCliOptions): Promise<number> {
  // Imported here, not at the top: `ges-archiver --help` does not load the AWS SDK (cli/main.ts).
  const [{ checkId, openStorageSession }, { listArchivedBackups }] = await Promise.all([import('./storage-session.js'), import('../lib/catalog/list.js')]);
  const graphId = checkId(opts.graph, '--graph');
  const session = openStorageSession(io, opts);
  try {
    const backups = await listArchivedBackups(session.deps, { graphId, signal: session.signal });
    const { bucket, prefix } = session.config.archive;
    if (opts.json) writeJson(io.stdout, { bucket, prefix, backups });
    else io.stdout.write(formatBackupList(backups, bucket, prefix));
    return backups.some((b) => !b.valid) ? 1 : 0;
  } finally {
    session.dispose();
  }
}

/** `ges-archiver list`: registered by cli/main.ts. */
export function registerListCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('list')
    .description('show the archived backups in the bucket (reads only the bucket: no GES credentials needed)')
    .option('--graph <graphId>', 'only this graph')
    .addHelpText('after', `
Lists every {ARCHIVE_PREFIX}{graphId}/{backupId}/ folder that has a manifest.json. Folders
without one (not archived, or still being archived) and the _runs/ reports are left out.
--json prints one document: { bucket, prefix, backups: [...] }.
Needs only ARCHIVE_BUCKET (and ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE, the AWS SDK variables).
Exit status: 0 listed; 1 a manifest.json is unusable (shown as INVALID) or S3 failed;
2 invalid configuration or arguments.`)
    .action(async (_opts: ListCliOptions, cmd: Command) => {
      setExitCode(await listCommand(io, cmd.optsWithGlobals<ListCliOptions>()));
    });
}
