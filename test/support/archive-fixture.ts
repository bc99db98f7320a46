// Archived backups written straight into a bucket, laid out exactly as the archiver writes them
// (files, SHA256SUMS, manifest.json last), for tests of what reads or deletes the archive.
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { buildArchiveManifest, type ArchivedFile, type ArchiveManifest } from '../../lib/store/archive-manifest.js';
import { fileKey, manifestKey } from '../../lib/store/keys.js';
import { writeSha256Sums } from '../../lib/store/sha256sums.js';
import { createRetryPolicy } from '../../lib/retry.js';

export interface FixtureBackup {
  graphId: string;
  backupId: string;
  files: Record<string, Buffer>;
  /** When GES took it (epoch ms); without it the manifest has no backupTime. */
  backupTimestamp?: number;
  archivedAt: Date;
}

export async function writeArchivedBackup(s3: S3Client, bucket: string, prefix: string, backup: FixtureBackup): Promise<ArchiveManifest> {
  const files: ArchivedFile[] = [];
  for (const [name, body] of Object.entries(backup.files)) {
    const key = fileKey(prefix, backup.graphId, backup.backupId, name);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    files.push({ name, key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  }
  const manifest = buildArchiveManifest({
    graphId: backup.graphId, backupId: backup.backupId, archivedAt: backup.archivedAt, files,
    ...(backup.backupTimestamp === undefined ? {} : { backupTimestamp: backup.backupTimestamp }),
  });
  await writeSha256Sums({ s3, retry: createRetryPolicy({ maxAttempts: 2, baseDelayMs: 5 }) }, bucket, prefix, manifest);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(prefix, backup.graphId, backup.backupId), Body: JSON.stringify(manifest) }));
  return manifest;
}
