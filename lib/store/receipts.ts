import type { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import type { RetryPolicy } from '../retry.js';
import type { ArchivedFile } from './archive-manifest.js';
import { getJson, headObject, listObjects, putJson } from './s3-objects.js';

/**
 * A receipt records that one file of a backup is stored at its final key and verified, with
 * its SHA-256. S3 fixes user metadata when a multipart upload starts, before the digest is
 * known, so the digest lives here instead: a re-run (or another Lambda worker) reuses a
 * completed file without downloading it again, and whoever writes manifest.json reads every
 * file's digest from here. Receipts live outside the backup's folder, under
 * `{prefix}_state/`, and are removed once manifest.json is written.
 */
export const receiptSchema = z.object({
  name: z.string().min(1),
  key: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  completedAt: z.string(),
});

export type FileReceipt = z.infer<typeof receiptSchema>;

interface Deps {
  s3: S3Client;
  retry: RetryPolicy;
}

export function stateBackupPrefix(prefix: string, graphId: string, backupId: string): string {
  return `${prefix}_state/${graphId}/${backupId}/`;
}

export function receiptKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}files/${fileName}.json`;
}

/** The receipt, or undefined when there is none (or it is unreadable: then the file is copied again). */
export async function readReceipt(deps: Deps, bucket: string, key: string, signal?: AbortSignal): Promise<FileReceipt | undefined> {
  const parsed = receiptSchema.safeParse(await getJson(deps, bucket, key, signal));
  return parsed.success ? parsed.data : undefined;
}

/**
 * The file, when its receipt is there and names it, and its object is stored with the
 * receipt's length: then it is archived and need not be copied again.
 */
export async function storedFile(
  deps: Deps,
  bucket: string,
  file: { name: string; key: string; receiptKey: string },
  signal?: AbortSignal,
): Promise<ArchivedFile | undefined> {
  const receipt = await readReceipt(deps, bucket, file.receiptKey, signal);
  if (!receipt || receipt.key !== file.key || receipt.name !== file.name) return undefined;
  const head = await headObject(deps, bucket, file.key, signal);
  if (!head || head.bytes !== receipt.bytes) return undefined;
  return { name: file.name, key: file.key, bytes: receipt.bytes, sha256: receipt.sha256 };
}

export async function writeReceipt(deps: Deps, bucket: string, key: string, receipt: FileReceipt, signal?: AbortSignal): Promise<void> {
  await putJson(deps, bucket, key, receipt, signal);
}

/**
 * The keys of the receipts that exist for a backup: one listing instead of a GET per file
 * (most backups have none).
 */
/** A copy's multipart progress (a handed-over Lambda copy, an interrupted CLI copy): `checkpoints/{fileName}.json`. */
export function checkpointKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}checkpoints/${fileName}.json`;
}

export async function listReceiptKeys(deps: Deps, bucket: string, prefix: string, graphId: string, backupId: string, signal?: AbortSignal): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const o of listObjects(deps, bucket, `${stateBackupPrefix(prefix, graphId, backupId)}files/`, signal)) keys.add(o.key);
  return keys;
}
