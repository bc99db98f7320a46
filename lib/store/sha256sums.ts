import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RetryPolicy } from '../retry.js';
import type { ArchiveManifest, ArchivedFile } from './archive-manifest.js';
import { fileKey } from './keys.js';
import { s3Error } from './s3-objects.js';

/**
 * `SHA256SUMS` next to each backup's manifest.json, in the format `sha256sum` prints and
 * `sha256sum -c` reads: one line per file, `<64 hex digits><space><space><name>`, sorted by
 * name. With it, a restored directory (or the files fetched by any S3 tool) can be checked
 * without this archiver: `cd DIR && sha256sum -c SHA256SUMS`. It says nothing manifest.json
 * does not: manifest.json stays the record, and `verify` checks that both agree.
 */
export const SHA256SUMS_NAME = 'SHA256SUMS';

export function sha256SumsKey(prefix: string, graphId: string, backupId: string): string {
  return fileKey(prefix, graphId, backupId, SHA256SUMS_NAME);
}

/**
 * The file's text. Names are safe single path segments (no backslash, no newline: see
 * lib/copy/guard.ts), so none needs sha256sum's backslash escaping.
 */
export function formatSha256Sums(files: readonly Pick<ArchivedFile, 'name' | 'sha256'>[]): string {
  return [...files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => `${f.sha256}  ${f.name}\n`)
    .join('');
}

export type Sha256SumsParse =
  | { ok: true; entries: Map<string, string> }
  | { ok: false; problem: string };

const LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/;

/** Reads a SHA256SUMS text (text `  ` or binary ` *` mode lines); name → lower-case digest. */
export function parseSha256Sums(text: string): Sha256SumsParse {
  const entries = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(line);
    if (!m) return { ok: false, problem: `line ${i + 1} is not "<sha256>  <name>"` };
    const name = m[2]!;
    if (entries.has(name)) return { ok: false, problem: `line ${i + 1}: ${name} is listed twice` };
    entries.set(name, m[1]!.toLowerCase());
  }
  return { ok: true, entries };
}

/**
 * Where SHA256SUMS and manifest.json disagree, in words; undefined when they list the same
 * files with the same digests.
 */
export function sha256SumsDisagreement(sums: Map<string, string>, files: readonly Pick<ArchivedFile, 'name' | 'sha256'>[]): string | undefined {
  for (const f of files) {
    const digest = sums.get(f.name);
    if (digest === undefined) return `${f.name} is listed in manifest.json but not in ${SHA256SUMS_NAME}`;
    if (digest !== f.sha256) return `${f.name}: ${SHA256SUMS_NAME} says ${digest}, manifest.json says ${f.sha256}`;
  }
  const listed = new Set(files.map((f) => f.name));
  const stray = [...sums.keys()].find((name) => !listed.has(name));
  return stray === undefined ? undefined : `${stray} is listed in ${SHA256SUMS_NAME} but not in manifest.json`;
}

/**
 * Writes a backup's SHA256SUMS. The one writer, called by the inline archive and the fan-out
 * finalize just before manifest.json (which stays the last object written). One PutObject: the
 * object appears whole or not at all.
 */
export async function writeSha256Sums(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  prefix: string,
  manifest: Pick<ArchiveManifest, 'graphId' | 'backupId' | 'files'>,
  signal?: AbortSignal,
): Promise<string> {
  const key = sha256SumsKey(prefix, manifest.graphId, manifest.backupId);
  const body = formatSha256Sums(manifest.files);
  await deps.retry(async () => {
    try {
      await deps.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'text/plain; charset=utf-8' }), { abortSignal: signal });
    } catch (err) {
      throw s3Error('PutObject', key, err);
    }
  }, { signal });
  return key;
}
