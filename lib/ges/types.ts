/**
 * Normalized GES domain types: what the rest of the archiver sees, whatever spelling
 * (v2 snake_case, v1 camelCase) or value type GES used on the wire. Wire shapes and their
 * validation live in ./wire.ts.
 */

export interface GesBackup {
  id: string;
  name: string;
  graphId: string;
  /** 'success' | 'backing_up' | 'failed', or any other value GES invents (treat as not ready). */
  status: string;
  /** Epoch milliseconds. */
  startTimestamp: number | undefined;
  /** Epoch milliseconds. */
  endTimestamp: number | undefined;
  /** Megabytes, as GES reports them (an estimate, docs/ges-api.md §9.2). */
  sizeMb: number | undefined;
  /** 'auto' | 'manual' | 'import' | other. */
  backupMethod: string | undefined;
}

export interface GesBackupFile {
  name: string;
  /** Kilobytes, as GES reports them (an estimate: verify against Content-Length). */
  sizeKb: number | undefined;
  /** A presigned OBS URL. Opaque: never re-encode it, never log its query. */
  downloadLink: string;
  /** Raw and unparsed: its format is unreliable (docs/ges-api.md §9.1). */
  linkExpiredTime: string | undefined;
}

export interface GesBackupFiles {
  bucket: string | undefined;
  /** May be empty: GES omits `files` when it has nothing to offer (docs/ges-api.md §9.19). */
  files: GesBackupFile[];
  /** epoch ms when GES answered (for link-expiry fallback) */
  receivedAt: number;
}

/** A GES job as its status API reports it (docs/ges-api.md §4.4). */
export interface GesJob {
  jobId: string;
  /** pending | running | waiting | success | failed | partiallyFailed, or a value GES invents (not finished). */
  status: string;
  /** Why it failed, when GES says. */
  failReason?: string;
  /** `job_progress`, documented as reserved: shown when present, never relied on. */
  progress?: number;
}
