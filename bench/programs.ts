// The four programs measured on each case, each run as a user would run it and timed as whole
// processes (startup included):
//   download  curl -s -o /dev/null LINK                  (curl --parallel for several files)
//   upload    rclone copyto FILE sw:bucket/key            (rclone copy DIR … for several files)
//   rclone    rclone copyurl LINK sw:bucket/key           (several processes at once for several files)
//   archiver  node bin/ges-archiver.js archive --graph G --backup B
// After each run the bytes it stored (or downloaded) are checked, so a program that "succeeds"
// without doing the work fails the benchmark instead of posting a fast time.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import type { BenchCase, BenchFile } from './cases.js';
import { totalBytes } from './cases.js';
import { runQuiet, runTimed, type Timed } from './measure.js';
import type { Measurement } from './stats.js';

/** Same part size and parallelism as the archiver's copy of one file, for rclone's uploads. */
export const RCLONE_S3_FLAGS = ['--s3-chunk-size', '16M', '--s3-upload-concurrency', '4'] as const;

export interface Stage {
  root: string;
  /** The project's Node 22, which runs the archiver's bin. */
  node: string;
  curl: string;
  rclone: string;
  /** Scratch directory (GNU time reports, local copies of the files for the plain upload). */
  dir: string;
  bucket: string;
  curlEnv: NodeJS.ProcessEnv;
  rcloneEnv: NodeJS.ProcessEnv;
  /** The archiver's environment, except the GES endpoint (per case) and ARCHIVE_PREFIX (fresh for every run). */
  archiverEnv: NodeJS.ProcessEnv;
}

/** A GES endpoint (the emulator) and what the archiver is asked to archive from it. */
export interface Source {
  gesEndpoint: string;
  projectId: string;
  token: string;
  graphId: string;
}

interface Job {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

let reports = 0;

/**
 * Runs `jobs` with at most `parallelism` processes at once, each starting the next job as soon
 * as its previous one exits. Wall clock: from the first spawn to the last exit.
 */
async function runPool(stage: Stage, jobs: readonly Job[], parallelism: number): Promise<{ seconds: number; peakRssBytes: number; runs: Timed[] }> {
  const runs: Timed[] = [];
  let next = 0;
  const started = performance.now();
  let lastExit = started;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < jobs.length; i = next++) {
      const job = jobs[i] as Job;
      const t = await runTimed(job.command, job.args, { env: job.env, cwd: stage.root, rssFile: join(stage.dir, `time-${++reports}.txt`) });
      runs[i] = t;
      lastExit = Math.max(lastExit, t.exitedAt);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, jobs.length) }, worker));
  return { seconds: (lastExit - started) / 1000, peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)), runs };
}

const backupFilesSchema = z.object({
  files: z.array(z.object({ name: z.string(), download_link: z.url() })),
});

/** Fresh signed links for the case's files, in the case's order (as the archiver gets them: GES backup-files). */
export async function fetchLinks(source: Source, c: BenchCase): Promise<string[]> {
  const url = `${source.gesEndpoint}/v2/${source.projectId}/graphs/${encodeURIComponent(source.graphId)}/backup-files?backup_id=${encodeURIComponent(c.backupId)}`;
  const res = await fetch(url, { headers: { 'X-Auth-Token': source.token } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GES backup-files for ${c.backupId} answered ${res.status}: ${text.slice(0, 300)}`);
  const parsed = backupFilesSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`GES backup-files for ${c.backupId}: unexpected response (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  const byName = new Map(parsed.data.files.map((f) => [f.name, f.download_link]));
  return c.files.map((f) => {
    const link = byName.get(f.name);
    if (link === undefined) throw new Error(`GES backup-files for ${c.backupId} has no link for ${f.name}`);
    return link;
  });
}

function curlArgs(c: BenchCase, links: readonly string[], outputs: readonly string[]): string[] {
  const pairs = links.flatMap((link, i) => ['-o', outputs[i] as string, link]);
  const parallel = links.length > 1 ? ['--parallel', '--parallel-immediate', '--parallel-max', String(c.peerParallelism)] : [];
  // -w prints each transfer's byte count, checked against the file sizes.
  return ['-s', '-S', '-f', ...parallel, '-w', '%{size_download}\n', ...pairs];
}

function checkCurlBytes(c: BenchCase, stdout: string): void {
  const got = stdout.trim().split('\n').map(Number).reduce((a, b) => a + b, 0);
  if (got !== totalBytes(c)) throw new Error(`curl downloaded ${got} bytes for ${c.title}, expected ${totalBytes(c)}`);
}

/** Local copies of the case's files (the same bytes), for the plain upload; written once, outside any timing. */
export async function prepareLocalFiles(stage: Stage, c: BenchCase, links: readonly string[]): Promise<string> {
  const dir = join(stage.dir, `files-${c.id}`);
  await mkdir(dir, { recursive: true });
  const out = await runQuiet(stage.curl, curlArgs(c, links, c.files.map((f) => join(dir, f.name))), stage.curlEnv, stage.root);
  checkCurlBytes(c, out);
  for (const f of c.files) {
    const s = await stat(join(dir, f.name));
    if (s.size !== f.bytes) throw new Error(`local copy of ${f.name} has ${s.size} bytes, expected ${f.bytes}`);
  }
  return dir;
}

export async function plainDownload(stage: Stage, c: BenchCase, links: readonly string[]): Promise<Measurement> {
  const run = await runPool(stage, [{ command: stage.curl, args: curlArgs(c, links, links.map(() => '/dev/null')), env: stage.curlEnv }], 1);
  checkCurlBytes(c, run.runs[0]?.stdout ?? '');
  return { bytes: totalBytes(c), seconds: run.seconds, peakRssBytes: run.peakRssBytes };
}

const remote = (stage: Stage, key: string): string => `sw:${stage.bucket}/${key}`;

/** `prefix` ends with '/'. */
export async function plainUpload(stage: Stage, c: BenchCase, localDir: string, prefix: string): Promise<Measurement> {
  const common = ['-q', ...RCLONE_S3_FLAGS, '--s3-disable-checksum', '--no-check-dest'];
  const only = c.files.length === 1 ? c.files[0] : undefined;
  const args = only
    ? ['copyto', ...common, join(localDir, only.name), remote(stage, prefix + only.name)]
    : ['copy', ...common, '--transfers', String(c.peerParallelism), localDir, remote(stage, prefix)];
  const run = await runPool(stage, [{ command: stage.rclone, args, env: stage.rcloneEnv }], 1);
  await checkStored(stage, c, prefix);
  return { bytes: totalBytes(c), seconds: run.seconds, peakRssBytes: run.peakRssBytes };
}

export async function rcloneCopyurl(stage: Stage, c: BenchCase, links: readonly string[], prefix: string): Promise<Measurement> {
  const jobs = c.files.map((f: BenchFile, i) => ({
    command: stage.rclone,
    args: ['copyurl', '-q', ...RCLONE_S3_FLAGS, links[i] as string, remote(stage, prefix + f.name)],
    env: stage.rcloneEnv,
  }));
  const run = await runPool(stage, jobs, c.peerParallelism);
  await checkStored(stage, c, prefix);
  return { bytes: totalBytes(c), seconds: run.seconds, peakRssBytes: run.peakRssBytes };
}

const archiverReportSchema = z.object({
  backups: z.array(z.object({ status: z.string(), bytes: z.number() })),
});

/** The command line the archiver runs with (printed in the header). */
export function archiverArgs(graphId: string, backupId: string): string[] {
  return ['bin/ges-archiver.js', 'archive', '--graph', graphId, '--backup', backupId, '--json', '--no-progress'];
}

/** What points the archiver at `source` (a token, as for any GES with static tokens). */
export function gesEnv(source: Source): NodeJS.ProcessEnv {
  return { GES_ENDPOINT: source.gesEndpoint, GES_PROJECT_ID: source.projectId, GES_AUTH_TOKEN: source.token };
}

/**
 * `prefix` (ends with '/') is a fresh ARCHIVE_PREFIX, so the backup is never already archived.
 * `extraArgs` follow the usual ones (the bwlimit case's --bwlimit and --stats-json); the
 * result keeps the tail of the archiver's stderr for them.
 */
export async function archiver(stage: Stage, c: Pick<BenchCase, 'backupId' | 'files'>, source: Source, prefix: string, extraArgs: readonly string[] = []): Promise<Measurement & { stderr: string }> {
  const env = { ...stage.archiverEnv, ...gesEnv(source), ARCHIVE_PREFIX: prefix };
  const run = await runPool(stage, [{ command: stage.node, args: [...archiverArgs(source.graphId, c.backupId), ...extraArgs], env }], 1);
  const stdout = run.runs[0]?.stdout ?? '';
  const report = archiverReportSchema.safeParse(JSON.parse(stdout));
  const b = report.success ? report.data.backups[0] : undefined;
  if (b?.status !== 'archived' || b.bytes !== totalBytes(c)) {
    throw new Error(`the archiver did not archive ${c.backupId} (expected status "archived" and ${totalBytes(c)} bytes): ${stdout.slice(0, 500)}`);
  }
  await checkStored(stage, c, `${prefix}${source.graphId}/${c.backupId}/`, ['--exclude', 'manifest.json', '--exclude', 'SHA256SUMS']);
  return { bytes: totalBytes(c), seconds: run.seconds, peakRssBytes: run.peakRssBytes, stderr: run.runs[0]?.stderr ?? '' };
}

const sizeSchema = z.object({ count: z.number(), bytes: z.number() });

/** Exactly the case's files, byte count for byte count, are stored under `prefix`. */
async function checkStored(stage: Stage, c: Pick<BenchCase, 'files'>, prefix: string, extra: string[] = []): Promise<void> {
  const out = await runQuiet(stage.rclone, ['size', '-q', '--json', ...extra, remote(stage, prefix)], stage.rcloneEnv, stage.root);
  const size = sizeSchema.parse(JSON.parse(out));
  if (size.count !== c.files.length || size.bytes !== totalBytes(c)) {
    throw new Error(`${remote(stage, prefix)} holds ${size.count} objects / ${size.bytes} bytes, expected ${c.files.length} / ${totalBytes(c)}`);
  }
}

/** Deletes everything under `prefix` (multipart segments included), so the store does not fill up over the rounds. */
export async function purge(stage: Stage, prefix: string): Promise<void> {
  await runQuiet(stage.rclone, ['purge', '-q', remote(stage, prefix)], stage.rcloneEnv, stage.root);
}
