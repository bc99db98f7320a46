import { type Command } from 'commander';
import type { CliIo } from './io.js';
import type { PruneCliOptions } from './prune-command.js';

// The command's code (and the AWS SDK, undici, pino it needs) loads only when it runs:
// \`ges-archiver --help\` stays fast (cli/main.ts).
export function registerPruneCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('prune')
    .description('delete archived backups beyond the retention policy (reads and deletes only in the bucket: no GES credentials needed)')
    .option('--keep-last <N>', 'keep the newest N archived backups of each graph (required; at least 1)')
    .option('--keep-within <duration>', 'also keep every backup younger than this (90d, 12h, 2w, 1y); older run reports under _runs/ are deleted too')
    .option('--graph <graphId>', 'only this graph')
    .option('--dry-run', 'delete nothing; report what would be deleted')
    .addHelpText('after', `
Per graph, keeps the newest N archived backups (by backup time, else archive time) and every
one younger than --keep-within, and deletes the others: manifest.json first (so a half-deleted
backup is never listed as archived), then its files, SHA256SUMS and its _state/. A backup with
an object under S3 Object Lock retention or a legal hold is reported LOCKED and nothing of it is
deleted. A backup whose manifest.json is unusable is kept. Folders without manifest.json
(being archived) are never touched.
--json prints one document: { kept: [...], deleted: [...], locked: [...], failed: [...] }.
Needs only ARCHIVE_BUCKET (and ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE, the AWS SDK variables).
Exit status: 0 the plan was carried out; 1 a backup was locked or could not be deleted;
2 invalid configuration or arguments (no --keep-last), nothing deleted.`)
    .action(async (_opts: PruneCliOptions, cmd: Command) => {
      const { pruneCommand } = await import('./prune-command.js');
      setExitCode(await pruneCommand(io, cmd.optsWithGlobals<PruneCliOptions>()));
    });
}
