import { archiveManifestSchema, type ArchiveManifest } from '../store/archive-manifest.js';
import { ARCHIVE_MANIFEST_NAME } from '../store/keys.js';
import { readObjectStream } from '../store/s3-objects.js';
import { describeIssues } from '../config.js';
import type { BackupFolder, StorageDeps } from './types.js';

/** A manifest lists a few entries per file; 16 MiB is far beyond any real backup's. */
export const MAX_ARCHIVE_MANIFEST_BYTES = 16 * 1024 * 1024;

export type ManifestReadResult =
  | { ok: true; manifest: ArchiveManifest }
  /** `data`: the parsed JSON, when it was JSON (verify still checks the entries it can read). */
  | { ok: false; problem: string; data?: unknown };

/** Not an S3 failure but a property of the object: reported as a problem, never retried. */
export class ObjectTooLarge extends Error {
  constructor(name: string, maxBytes: number) {
    super(`${name} is larger than ${maxBytes} bytes`);
    this.name = 'ObjectTooLarge';
  }
}

/**
 * Reads a whole small object (manifest.json, SHA256SUMS) as UTF-8 text, refusing more than
 * `maxBytes` (ObjectTooLarge); undefined when it does not exist.
 */
export function readSmallObjectText(deps: StorageDeps, key: string, maxBytes: number, signal?: AbortSignal): Promise<string | undefined> {
  return readObjectStream(deps, deps.config.archive.bucket, key, async (body) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > maxBytes) throw new ObjectTooLarge(key.slice(key.lastIndexOf('/') + 1), maxBytes);
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks).toString('utf8');
  }, signal);
}

/** Checks what the schema cannot: the manifest belongs to its folder and adds up. */
function consistencyProblem(m: ArchiveManifest, folder: BackupFolder): string | undefined {
  if (m.graphId !== folder.graphId) return `graphId is ${m.graphId}, but the manifest is in the folder of graph ${folder.graphId}`;
  if (m.backupId !== folder.backupId) return `backupId is ${m.backupId}, but the manifest is in the folder of backup ${folder.backupId}`;
  const names = new Set<string>();
  for (const [i, f] of m.files.entries()) {
    if (f.name.includes('/') || f.name === ARCHIVE_MANIFEST_NAME) return `files.${i}.name: ${f.name} is not a file name of this backup`;
    if (names.has(f.name)) return `files.${i}.name: ${f.name} is listed twice`;
    names.add(f.name);
    if (f.key !== `${folder.prefix}${f.name}`) return `files.${i}.key: ${f.key} is not ${folder.prefix}${f.name}`;
  }
  if (m.fileCount !== m.files.length) return `fileCount is ${m.fileCount}, but files lists ${m.files.length}`;
  const total = m.files.reduce((sum, f) => sum + f.bytes, 0);
  if (m.totalBytes !== total) return `totalBytes is ${m.totalBytes}, but the files add up to ${total}`;
  return undefined;
}

/**
 * Reads and validates a backup's manifest.json. An unusable manifest (gone, too large, not
 * JSON, not the schema, not consistent with its folder) is a result, not an exception: the
 * caller reports it and carries on with the other backups. S3 failures still throw.
 */
export async function readArchiveManifest(deps: StorageDeps, folder: BackupFolder, signal?: AbortSignal): Promise<ManifestReadResult> {
  let text: string | undefined;
  try {
    text = await readSmallObjectText(deps, folder.manifestKey, MAX_ARCHIVE_MANIFEST_BYTES, signal);
  } catch (err) {
    if (err instanceof ObjectTooLarge) return { ok: false, problem: err.message };
    throw err;
  }
  if (text === undefined) return { ok: false, problem: 'manifest.json disappeared while it was being read' };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `manifest.json is not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  const parsed = archiveManifestSchema.safeParse(data);
  if (!parsed.success) return { ok: false, problem: `manifest.json does not match the schema: ${describeIssues(parsed.error)}`, data };
  const problem = consistencyProblem(parsed.data, folder);
  return problem === undefined ? { ok: true, manifest: parsed.data } : { ok: false, problem: `manifest.json: ${problem}`, data };
}
