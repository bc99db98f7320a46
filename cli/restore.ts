import type { Command } from 'commander';
import type { CliIo } from './io.js';
import type { RestoreCliOptions } from './restore-command.js';

// The command's code (and the AWS SDK, undici, pino it needs) loads only when it runs:
// \`ges-archiver --help\` stays fast (cli/main.ts).
export function registerRestoreCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('restore')
    .description('copy an archived backup out of the archive, verified, into a directory or an S3/OBS folder; optionally import it into GES')
    .requiredOption('--graph <graphId>', 'graph id')
    .requiredOption('--backup <backupId>', 'backup id')
    .requiredOption('--to <DIR|s3://bucket/prefix/>', 'a directory (created if missing), or an S3 folder (RESTORE_S3_ENDPOINT for Huawei OBS)')
    .option('--import', 'then ask GES to import the s3:// folder as a backup, and wait for the job')
    .option('--import-graph <graphId>', 'the graph GES imports into (default: --graph)')
    .option('--import-timeout <minutes>', 'give up waiting for the import job after this long (default 60)')
    .option('--poll-interval <seconds>', 'time between two import job status requests (default 15)')
    .option('--force', 'replace files at the target that differ from the archive')
    .option('--concurrency <n>', 'files restored at once (default 4)')
    .addHelpText('after', `
Reads {ARCHIVE_PREFIX}{graph}/{backup}/manifest.json and streams every file it lists out of
the archive, checking its length and SHA-256 on the way. A file lands at its final name only
once verified (a temporary name, then a rename; for s3://, an upload that completes only
then). Files already at the target with the right SHA-256 are kept; one that differs stops
the restore before anything is written, unless --force. A directory may hold only the
backup's files and SHA256SUMS (written last: check with \`sha256sum -c SHA256SUMS\`); an
s3:// folder only the backup's files (GES imports everything in it).
--json prints one document: { graphId, backupId, target, files: [...], import }.
s3:// targets use RESTORE_S3_ENDPOINT, RESTORE_S3_REGION, RESTORE_S3_FORCE_PATH_STYLE,
RESTORE_S3_ACCESS_KEY_ID and RESTORE_S3_SECRET_ACCESS_KEY when set (e.g. Huawei OBS), else
the archive's own S3 settings. --import also needs the GES settings (GES_ENDPOINT, auth).
Exit status: 0 restored (and imported); 1 not archived (NOT_ARCHIVED), a damaged file
(VERIFY_FAILED), a failed import (IMPORT_FAILED) or a store failure; 2 invalid
configuration or arguments, or a target that holds other or differing files (nothing written).`)
    .action(async (_opts: RestoreCliOptions, cmd: Command) => {
      const { restoreCommand } = await import('./restore-command.js');
      setExitCode(await restoreCommand(io, cmd.optsWithGlobals<RestoreCliOptions>()));
    });
}
