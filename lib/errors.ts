/**
 * Stable error codes. Callers, alerts, the CLI report and tests branch on `code`, never on
 * message text. `retryable` says whether the same request may succeed if sent again later.
 */
export const ErrorCodes = {
  /** Configuration (environment) is missing or invalid. */
  ConfigInvalid: 'CONFIG_INVALID',
  /** The run manifest is unreadable or invalid. */
  ManifestInvalid: 'MANIFEST_INVALID',
  /** Command-line arguments are invalid. */
  ArgsInvalid: 'ARGS_INVALID',
  /** IAM refused the credentials, GES refused the token after a renewal, or the gateway refused an AK/SK signature. */
  GesAuthFailed: 'GES_AUTH_FAILED',
  /** GES (or its gateway) throttled the request (429, APIGW.0308). */
  GesThrottled: 'GES_THROTTLED',
  /** GES or the gateway is temporarily unavailable (5xx, GES.7005, GES.7006). */
  GesUnavailable: 'GES_UNAVAILABLE',
  /** GES rejected the request (a non-retryable 4xx with a GES/APIGW code). */
  GesRequestRejected: 'GES_REQUEST_REJECTED',
  /** The graph does not exist (GES.7000) or the project does not match (GES.0016). */
  GraphNotFound: 'GRAPH_NOT_FOUND',
  /** The backup does not exist (GES.7024) or is not among the graph's backups. */
  BackupNotFound: 'BACKUP_NOT_FOUND',
  /** The backup exists but is not `success` (still backing up, or failed). */
  BackupNotReady: 'BACKUP_NOT_READY',
  /** The graph has no successful backup to archive. */
  NoBackup: 'NO_BACKUP',
  /** GES answered with a body that does not match the documented shapes. */
  GesBadResponse: 'GES_BAD_RESPONSE',
  /** GES's backup list stopped short of its own backup_count: only a subset could be listed. */
  ListingIncomplete: 'LISTING_INCOMPLETE',
  /** GES listed no downloadable files for a backup. */
  NoFiles: 'NO_FILES',
  /** A download link points to a host that is not allowed, or is not https. */
  LinkRefused: 'LINK_REFUSED',
  /** A file name is not a safe single path segment. */
  UnsafeFileName: 'UNSAFE_FILE_NAME',
  /** The download link has expired (or OBS refused it); a fresh one is needed. */
  LinkExpired: 'LINK_EXPIRED',
  /** The download failed (network error, 5xx, unexpected status). */
  DownloadFailed: 'DOWNLOAD_FAILED',
  /** The download body was shorter or longer than announced. */
  DownloadLengthMismatch: 'DOWNLOAD_LENGTH_MISMATCH',
  /** The source object changed while it was being copied (ETag changed, 412). */
  SourceChanged: 'SOURCE_CHANGED',
  /** Writing to S3 failed. */
  S3Failed: 'S3_FAILED',
  /**
   * The archive bucket does not exist, cannot be reached, or refuses these credentials: found by
   * the check before a run (exit 2; retryable only when the endpoint could not be reached or failed).
   */
  BucketUnavailable: 'BUCKET_UNAVAILABLE',
  /**
   * Another run wrote the backup's manifest.json while this copy ran: the copy was not committed
   * (nothing replaced). Reported as `skipped`, not as a failure. Not retryable: the backup is archived.
   */
  AlreadyArchived: 'ALREADY_ARCHIVED',
  /**
   * The backup is being archived by another run's fan-out (its job.json is younger than
   * FANOUT_MARKER_HOURS): skipped. Retryable: a later run archives it if the fan-out did not.
   */
  FanoutInProgress: 'FANOUT_IN_PROGRESS',
  /** The stored object does not match what was downloaded. */
  VerifyFailed: 'VERIFY_FAILED',
  /** The work did not finish before its deadline. */
  DeadlineExceeded: 'DEADLINE_EXCEEDED',
  /** A copy handed over between Lambda invocations went on too long without progress, or restarted too often. */
  HandoverLimit: 'HANDOVER_LIMIT',
  /** The operation was cancelled. */
  Aborted: 'ABORTED',
  /** The copy queue (SQS) or the alert topic (SNS) refused or failed a request. */
  QueueFailed: 'QUEUE_FAILED',
  /** A fan-out message is malformed. */
  MessageInvalid: 'MESSAGE_INVALID',
  /** The backup asked for has no manifest.json in the archive (restore). */
  NotArchived: 'NOT_ARCHIVED',
  /** GES refused the import of a restored backup, or its import job failed or timed out. */
  ImportFailed: 'IMPORT_FAILED',
  /** An object is under S3 Object Lock retention or a legal hold and may not be deleted (prune). */
  Locked: 'LOCKED',
  /** Anything not foreseen: a bug, or a failure of a dependency we could not classify. */
  Internal: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface ArchiverErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Milliseconds the server asked us to wait (Retry-After), when it did. */
  retryAfterMs?: number;
  /** Extra structured context (never secrets): status codes, remote codes, field names. */
  details?: Record<string, unknown>;
}

export class ArchiverError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ArchiverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ArchiverError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }
}

/** True when an error (or its cause chain) is an abort of our own signal. */
export function isAbortError(err: unknown): boolean {
  // Duck-typed: DOMException (AbortSignal reasons) is not `instanceof Error` in every realm.
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    if (e instanceof ArchiverError && (e.code === ErrorCodes.Aborted || e.code === ErrorCodes.DeadlineExceeded)) return true;
    const { name, cause } = e as { name?: unknown; cause?: unknown };
    if (name === 'AbortError' || name === 'TimeoutError') return true;
    e = cause;
  }
  return false;
}

/** Converts anything thrown into an ArchiverError, keeping the original as `cause`. */
export function toArchiverError(err: unknown, fallback: ErrorCode = ErrorCodes.Internal): ArchiverError {
  if (err instanceof ArchiverError) return err;
  if (isAbortError(err)) {
    return new ArchiverError(ErrorCodes.Aborted, 'The operation was cancelled before it finished', { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ArchiverError(fallback, message, { cause: err });
}

/**
 * The error to report for `err`, raised while `signal` may have aborted: once the signal has
 * fired, a request cut off by it reports the signal's reason (DEADLINE_EXCEEDED from a Lambda
 * deadline, ABORTED from Ctrl-C) instead of a generic cancellation.
 */
export function failureOf(err: unknown, signal?: AbortSignal): ArchiverError {
  if (signal?.aborted === true && isAbortError(err)) return toArchiverError(signal.reason);
  return toArchiverError(err);
}

/** The `{ code, message }` pair shown in reports and alerts. */
export function errorSummary(err: unknown): { code: ErrorCode; message: string } {
  const e = toArchiverError(err);
  return { code: e.code, message: e.message };
}
