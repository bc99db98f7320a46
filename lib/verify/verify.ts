import type { ArchiveManifest } from '../store/archive-manifest.js';
import pLimit from 'p-limit';
import type { ArchivedFile } from '../store/archive-manifest.js';
import { manifestKey } from '../store/keys.js';
import { parseSha256Sums, sha256SumsDisagreement } from '../store/sha256sums.js';
import { ObjectTooLarge, readArchiveManifest, readSmallObjectText, type ManifestReadResult } from '../catalog/read-manifest.js';
import { scanArchive } from '../catalog/scan.js';
import type { BackupFolder, StorageDeps } from '../catalog/types.js';
import { errorSummary, isAbortError } from '../errors.js';
import { compareObject } from './compare.js';
import { hashObject } from './hash-object.js';
import { salvageEntries } from './salvage.js';
import { chooseSample } from './sample.js';
import type { VerifiedBackup, VerifyOptions, VerifyProblem, VerifyReport } from './types.js';

const DEFAULT_CONCURRENCY = 4;

export interface FileCheck {
  folder: BackupFolder;
  backup: VerifiedBackup;
  file: ArchivedFile;
}

/**
 * Problems the request itself reveals: nothing archived where the caller looked (the whole
 * prefix, a graph, or a backup). A mistyped prefix must not make a scheduled drill pass.
 */
export function notArchived(deps: StorageDeps, options: VerifyOptions, folders: BackupFolder[]): VerifyProblem[] {
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId } = options;
  if (folders.some((f) => f.archived)) return [];
  const under = `under s3://${bucket}/${prefix}`;
  if (backupId !== undefined) {
    const folder = folders[0];
    if (folder) {
      const message = 'the backup folder has no manifest.json: it is not (completely) archived';
      return [{ kind: 'missing', key: folder.manifestKey, graphId: folder.graphId, backupId, message }];
    }
    const key = graphId === undefined ? `${prefix}*/${backupId}/manifest.json` : manifestKey(prefix, graphId, backupId);
    return [{ kind: 'missing', key, ...(graphId === undefined ? {} : { graphId }), backupId, message: `no archived backup with this id ${under}` }];
  }
  if (graphId !== undefined) {
    return [{ kind: 'missing', key: `${prefix}${graphId}/`, graphId, message: `no archived backup of this graph ${under}` }];
  }
  return [{
    kind: 'missing', key: prefix,
    message: `nothing is archived ${under}: no backup folder holds a manifest.json (check ARCHIVE_BUCKET and ARCHIVE_PREFIX)`,
  }];
}

/** Listing checks, for every file: present, and of the recorded length. */
export function listingProblem(check: FileCheck): VerifyProblem | undefined {
  const { folder, file } = check;
  const where = { key: file.key, graphId: folder.graphId, backupId: folder.backupId };
  const size = folder.objects.get(file.key);
  if (size === undefined) return { kind: 'missing', ...where, expected: { bytes: file.bytes, sha256: file.sha256 } };
  const kind = compareObject(file, { bytes: size });
  return kind ? { kind, ...where, expected: { bytes: file.bytes, sha256: file.sha256 }, actual: { bytes: size } } : undefined;
}

/** Re-reads one file and compares its length and SHA-256 with the manifest. */
export async function contentProblem(deps: StorageDeps, check: FileCheck, options: Pick<VerifyOptions, 'signal' | 'onEvent'>): Promise<VerifyProblem | undefined> {
  const { folder, file } = check;
  const { signal } = options;
  const where = { key: file.key, graphId: folder.graphId, backupId: folder.backupId };
  const expected = { bytes: file.bytes, sha256: file.sha256 };
  const onBytes = options.onEvent === undefined ? undefined : (delta: number) => options.onEvent?.({ type: 'bytes', delta });
  try {
    const actual = await hashObject(deps, file.key, signal, { onBytes });
    if (actual === undefined) return { kind: 'missing', ...where, expected };
    const kind = compareObject(file, actual);
    return kind ? { kind, ...where, expected, actual } : undefined;
  } catch (err) {
    if (isAbortError(err) || signal?.aborted) throw err;
    const { code, message } = errorSummary(err);
    deps.logger.warn({ err, key: file.key }, 'could not read an archived object back');
    return { kind: 'unreadable', ...where, expected, message: `${code}: ${message}` };
  }
}

/** SHA256SUMS lists a line of ~70 bytes per file; 16 MiB is far beyond any real backup's. */
const MAX_SHA256SUMS_BYTES = 16 * 1024 * 1024;

/** The backup's SHA256SUMS, when it has one, must list exactly the files and digests of manifest.json. */
export async function sha256SumsProblem(deps: StorageDeps, folder: BackupFolder, manifest: ArchiveManifest, signal?: AbortSignal): Promise<VerifyProblem | undefined> {
  if (folder.sha256sums === undefined) return undefined;
  const where = { kind: 'sha256sums-mismatch' as const, key: folder.sha256sums.key, graphId: folder.graphId, backupId: folder.backupId };
  let text: string | undefined;
  try {
    text = await readSmallObjectText(deps, folder.sha256sums.key, MAX_SHA256SUMS_BYTES, signal);
  } catch (err) {
    if (err instanceof ObjectTooLarge) return { ...where, message: err.message };
    throw err;
  }
  if (text === undefined) return { ...where, message: 'SHA256SUMS disappeared while it was being read' };
  const parsed = parseSha256Sums(text);
  if (!parsed.ok) return { ...where, message: `SHA256SUMS is not in sha256sum format: ${parsed.problem}` };
  const disagreement = sha256SumsDisagreement(parsed.entries, manifest.files);
  return disagreement === undefined ? undefined : { ...where, message: disagreement };
}

/**
 * One archived backup's files to check, from its folder listing and its manifest.json: the
 * `extra` objects its manifest does not list and, for an unusable manifest, `manifest-invalid`
 * (the entries that can still be read are checked all the same: one bad entry does not hide the rest).
 */
export function backupChecks(folder: BackupFolder, read: ManifestReadResult): { backup: VerifiedBackup; checks: FileCheck[]; problems: VerifyProblem[] } {
  const backup: VerifiedBackup = {
    graphId: folder.graphId, backupId: folder.backupId, manifestKey: folder.manifestKey,
    files: 0, checked: 0, matched: 0, problems: 0,
  };
  const problems: VerifyProblem[] = [];
  let files: readonly ArchivedFile[];
  let listed: ReadonlySet<string>;
  if (read.ok) {
    files = read.manifest.files;
    listed = new Set(files.map((f) => f.key));
  } else {
    problems.push({ kind: 'manifest-invalid', key: folder.manifestKey, graphId: folder.graphId, backupId: folder.backupId, message: read.problem });
    const salvaged = salvageEntries(read.data, folder);
    if (salvaged === undefined) return { backup, checks: [], problems };
    files = salvaged.files;
    listed = salvaged.listedKeys;
  }
  backup.files = files.length;
  for (const [key, bytes] of folder.objects) {
    if (!listed.has(key)) problems.push({ kind: 'extra', key, graphId: folder.graphId, backupId: folder.backupId, actual: { bytes } });
  }
  return { backup, checks: files.map((file) => ({ folder, backup, file })), problems };
}

/**
 * Re-reads archived backups from the bucket and compares them with their manifest.json.
 *
 * Every file the manifests list gets the cheap checks, from the listing: present, of the
 * recorded length; every object in a backup folder that its manifest does not list is
 * `extra`. The expensive check (stream the object through SHA-256) covers all files, or
 * with `samplePercent` a random share of them. Objects are streamed, never buffered, at
 * most `concurrency` at once. An unusable manifest.json is `manifest-invalid`, and every entry
 * it still holds that reads as a file of the backup is checked all the same. Nothing archived
 * where the caller looked (the prefix, a graph, a backup) is a `missing` problem. A problem is
 * reported, never thrown; S3 failures of the listing and cancellation still throw.
 */
export async function verifyArchive(deps: StorageDeps, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { signal } = options;
  const folders = await scanArchive(deps, options);
  const problems: VerifyProblem[] = notArchived(deps, options, folders);
  const incomplete = folders.filter((f) => !f.archived).map((f) => ({ graphId: f.graphId, backupId: f.backupId, prefix: f.prefix }));
  for (const f of incomplete) deps.logger.info(f, 'backup folder without manifest.json (not archived, or being archived): not verified');

  const limit = pLimit(options.concurrency ?? DEFAULT_CONCURRENCY);
  const archived = folders.filter((f) => f.archived);
  const manifests = await Promise.all(archived.map((folder) => limit(async () => readArchiveManifest(deps, folder, signal))));

  const backups: VerifiedBackup[] = [];
  const checks: FileCheck[] = [];
  archived.forEach((folder, i) => {
    const found = backupChecks(folder, manifests[i]!);
    backups.push(found.backup);
    problems.push(...found.problems);
    checks.push(...found.checks);
  });
  const sums = await Promise.all(archived.map((folder, i) => {
    const read = manifests[i]!;
    return read.ok ? limit(async () => sha256SumsProblem(deps, folder, read.manifest, signal)) : Promise.resolve(undefined);
  }));
  for (const p of sums) if (p) problems.push(p);

  const sample = chooseSample(checks.length, options.samplePercent ?? 100, options.random ?? Math.random);
  const listing = checks.map(listingProblem);
  // A file the listing already condemns is not read: its problem is known.
  const toRead = checks.filter((check, i) => sample.has(i) && listing[i] === undefined);
  options.onEvent?.({ type: 'plan', files: toRead.length, bytes: toRead.reduce((n, c) => n + c.file.bytes, 0) });
  const found = await Promise.all(checks.map((check, i) => {
    const problem = listing[i];
    if (problem || !sample.has(i)) return Promise.resolve({ check, checked: sample.has(i), problem });
    return limit(async () => {
      const result = { check, checked: true, problem: await contentProblem(deps, check, options) };
      options.onEvent?.({ type: 'file-done', key: check.file.key });
      return result;
    });
  }));
  for (const { check, checked, problem } of found) {
    if (checked) check.backup.checked += 1;
    if (checked && !problem) check.backup.matched += 1;
    if (problem) problems.push(problem);
  }

  for (const p of problems) {
    const b = backups.find((x) => x.graphId === p.graphId && x.backupId === p.backupId);
    if (b) b.problems += 1;
  }
  problems.sort((a, b) => a.key.localeCompare(b.key) || a.kind.localeCompare(b.kind));
  return {
    files: checks.length,
    checked: backups.reduce((n, b) => n + b.checked, 0),
    matched: backups.reduce((n, b) => n + b.matched, 0),
    ...(options.samplePercent === undefined ? {} : { samplePercent: options.samplePercent }),
    problems,
    backups,
    incomplete,
  };
}
