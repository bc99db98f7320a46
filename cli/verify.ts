import type { Command } from 'commander';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { seededRandom } from '../lib/verify/sample.js';
import type { VerifyProblem, VerifyReport } from '../lib/verify/types.js';
import { redactString } from '../lib/redact.js';
import { formatBytes, writeJson } from './format.js';
import type { CliIo } from './io.js';
import type { OutputFlags } from './plumbing.js';

interface VerifyCliOptions {
  graph?: string;
  backup?: string;
  sample?: string;
  seed?: string;
  concurrency?: string;
}

function argsError(message: string): ArchiverError {
  return new ArchiverError(ErrorCodes.ArgsInvalid, message);
}

/** `--sample 25`, `--sample 25%` or `--sample 12.5`: a share above 0 and at most 100. */
export function parseSamplePercent(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.trim().replace(/%$/, ''));
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 100) {
    throw argsError(`--sample must be a percentage above 0 and at most 100 (got ${JSON.stringify(value)})`);
  }
  return n;
}

function parseWhole(value: string | undefined, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw argsError(`${option} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return n;
}

function size(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${bytes} B${bytes >= 1024 * 1024 ? ` (${formatBytes(bytes)})` : ''}`;
}

function problemLine(p: VerifyProblem): string {
  const label = p.kind.toUpperCase().padEnd(19);
  switch (p.kind) {
    case 'missing':
      // An empty key: nothing is archived under an empty ARCHIVE_PREFIX (the message names the bucket).
      return `${label} ${p.key === '' ? '' : `${p.key}: `}${p.message ?? `not in the bucket; manifest.json records ${size(p.expected?.bytes)}`}`;
    case 'extra':
      return `${label} ${p.key}: ${size(p.actual?.bytes)}, not listed in manifest.json`;
    case 'truncated':
      return `${label} ${p.key}: ${size(p.actual?.bytes)}, shorter than the ${size(p.expected?.bytes)} recorded`;
    case 'size-mismatch':
      return `${label} ${p.key}: ${size(p.actual?.bytes)}, longer than the ${size(p.expected?.bytes)} recorded`;
    case 'altered':
      return `${label} ${p.key}: SHA-256 ${p.actual?.sha256 ?? '?'}, manifest.json records ${p.expected?.sha256 ?? '?'}`;
    case 'manifest-invalid':
    case 'sha256sums-mismatch':
    case 'unreadable':
      return `${label} ${p.key}: ${p.message ?? ''}`;
  }
}

/** The human report: one line per problem, then a summary. */
export function formatVerifyReport(report: VerifyReport): string {
  const out = report.problems.map(problemLine);
  const sample = report.samplePercent === undefined ? '' : ` (sample ${report.samplePercent}%)`;
  const n = report.backups.length;
  out.push(
    `Verified ${n} archived backup${n === 1 ? '' : 's'}: ${report.files} file${report.files === 1 ? '' : 's'} listed, `
    + `${report.checked} re-read and hashed${sample}, ${report.matched} matched; `
    + `${report.problems.length === 0 ? 'no problems' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`}.`,
  );
  if (report.incomplete.length > 0) {
    out.push(`Not verified (no manifest.json: not archived, or still being archived): ${report.incomplete.map((f) => f.prefix).join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

async function verifyCommand(io: CliIo, opts: VerifyCliOptions & OutputFlags): Promise<number> {
  // Imported here, not at the top: `ges-archiver --help` does not load the AWS SDK (cli/main.ts).
  const [{ checkId, openStorageSession }, { verifyArchive }] = await Promise.all([import('./storage-session.js'), import('../lib/verify/verify.js')]);
  const graphId = checkId(opts.graph, '--graph');
  const backupId = checkId(opts.backup, '--backup');
  const samplePercent = parseSamplePercent(opts.sample);
  const seed = parseWhole(opts.seed, '--seed', 0, 2 ** 32 - 1);
  const concurrency = parseWhole(opts.concurrency, '--concurrency', 1, 64);
  const session = openStorageSession(io, opts, true);
  try {
    const { progress } = session;
    const report = await verifyArchive(session.deps, {
      graphId,
      backupId,
      samplePercent,
      signal: session.signal,
      ...(seed === undefined ? {} : { random: seededRandom(seed) }),
      ...(concurrency === undefined ? {} : { concurrency }),
      onEvent: (e) => {
        if (e.type === 'plan') progress.add({ totalFiles: e.files, totalBytes: e.bytes });
        else if (e.type === 'bytes') progress.add({ bytes: e.delta });
        else progress.add({ files: 1 }, true);
      },
    });
    progress.stop();
    if (opts.json) writeJson(io.stdout, report);
    else io.stdout.write(redactString(formatVerifyReport(report)));
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    session.dispose();
  }
}

/** `ges-archiver verify`: registered by cli/main.ts. */
export function registerVerifyCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program.command('verify')
    .description('re-read archived backups from the bucket and compare every file with manifest.json (no GES credentials needed)')
    .option('--graph <graphId>', 'only this graph')
    .option('--backup <backupId>', 'only this backup')
    .option('--sample <percent>', 're-read and hash only this random share of the files (missing, extra and wrong-size files are still checked for all)')
    .option('--seed <n>', 'seed for --sample, to repeat the same choice of files')
    .option('--concurrency <n>', 'objects read at once (default 4)')
    .addHelpText('after', `
Every file listed in a manifest.json is checked against the bucket listing (missing,
truncated = shorter, size-mismatch = longer) and every object in a backup folder that the
manifest does not list is reported as extra. The file's bytes are then streamed through
SHA-256 and compared (altered = same length, other hash): for all files, or with --sample
for a random share of them (rounded up, at least one), so a scheduled drill stays cheap.
An unreadable or invalid manifest.json is reported as manifest-invalid; the file entries it
still holds are checked all the same. A SHA256SUMS that does not list the same files and
digests as manifest.json is sha256sums-mismatch. Nothing archived under the prefix (or the
graph or backup asked for) is a problem too, so a mistyped prefix never passes.
--json prints one document: { files, checked, matched, problems: [...], backups: [...] }.
Progress (bytes and files re-read) goes to stderr like run's; --no-progress silences it.
Needs only ARCHIVE_BUCKET (and ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE, the AWS SDK variables).
Exit status: 0 everything checked matches; 1 any problem (or S3 failed); 2 invalid
configuration or arguments.`)
    .action(async (_opts: VerifyCliOptions, cmd: Command) => {
      setExitCode(await verifyCommand(io, cmd.optsWithGlobals<VerifyCliOptions & OutputFlags>()));
    });
}
