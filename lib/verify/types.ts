export type VerifyProblemKind =
  /** A file the manifest lists is not in the bucket (or nothing is archived where verify was asked to look). */
  | 'missing'
  /** An object in the backup's folder that its manifest.json does not list. */
  | 'extra'
  /** The object is shorter than the manifest says. */
  | 'truncated'
  /** Same length, other bytes: the SHA-256 differs. */
  | 'altered'
  /** The object is longer than the manifest says. */
  | 'size-mismatch'
  /** manifest.json is unreadable, not JSON, not the schema, or inconsistent with its folder. */
  | 'manifest-invalid'
  /** The backup's SHA256SUMS is unreadable or does not list the files and digests manifest.json lists. */
  | 'sha256sums-mismatch'
  /** The object could not be read back (S3 kept failing after retries): not verified. */
  | 'unreadable';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  /** The S3 key concerned (for `manifest-invalid`, the manifest's key). */
  key: string;
  graphId?: string;
  backupId?: string;
  /** What manifest.json records. */
  expected?: { bytes?: number; sha256?: string };
  /** What the bucket holds. */
  actual?: { bytes?: number; sha256?: string };
  /** A sentence for the kinds that need one (manifest-invalid, sha256sums-mismatch, unreadable, missing backups). */
  message?: string;
}

export interface VerifiedBackup {
  graphId: string;
  backupId: string;
  manifestKey: string;
  /** Files its manifest.json lists (for an invalid one, the entries that could still be read). */
  files: number;
  /** Files whose bytes were re-read and hashed. */
  checked: number;
  /** Checked files that matched in length and SHA-256. */
  matched: number;
  /** Problems found in this backup. */
  problems: number;
}

export interface VerifyReport {
  /** Files listed by the manifests verified; all of them get the existence and size check. */
  files: number;
  /** Files whose bytes were re-read and hashed (the sample, or all). */
  checked: number;
  /** Checked files that matched. */
  matched: number;
  /** The `--sample` share, when one was asked for. */
  samplePercent?: number;
  problems: VerifyProblem[];
  backups: VerifiedBackup[];
  /** Backup folders with files but no manifest.json (not archived, or still being archived): not verified. */
  incomplete: { graphId: string; backupId: string; prefix: string }[];
}

export interface VerifyOptions {
  graphId?: string | undefined;
  backupId?: string | undefined;
  /** Re-read and hash only this share of the files (0 < p ≤ 100); listing checks still cover all. */
  samplePercent?: number | undefined;
  /** [0, 1) like Math.random (the default); pass a seeded one for a repeatable sample. */
  random?: (() => number) | undefined;
  signal?: AbortSignal | undefined;
  /** Objects read at once (default 4). Memory is about this × one stream buffer (~64 KiB). */
  concurrency?: number | undefined;
  /** Keys per ListObjectsV2 page (default S3's 1000). */
  pageSize?: number | undefined;
  /** Progress: what will be re-read, then bytes as they are hashed and each file as it is done. */
  onEvent?: ((event: VerifyEvent) => void) | undefined;
}

export type VerifyEvent =
  /** Files (and their bytes, as recorded) that will be re-read and hashed. */
  | { type: 'plan'; files: number; bytes: number }
  /** Bytes hashed; negative when a read broke off and starts again. */
  | { type: 'bytes'; delta: number }
  | { type: 'file-done'; key: string };
