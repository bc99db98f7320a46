import type { FileLink } from '../copy/copier.js';
import { assertAllowedLink, assertSafeFileName } from '../copy/guard.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { GesClient } from '../ges/client.js';
import type { GesBackupFile, GesBackupFiles } from '../ges/types.js';
import { ARCHIVE_MANIFEST_NAME } from '../store/keys.js';
import { SHA256SUMS_NAME } from '../store/sha256sums.js';
import { linkExpiresAt } from './link-expiry.js';

export function toFileLink(file: GesBackupFile, receivedAt: number): FileLink {
  return {
    url: file.downloadLink,
    expiresAt: linkExpiresAt(file.downloadLink, file.linkExpiredTime, receivedAt),
    ...(file.sizeKb === undefined ? {} : { sizeEstimateBytes: file.sizeKb * 1024 }),
  };
}

/**
 * Checks GES's file list before anything is downloaded: at least one file, every name a
 * safe single path segment (and not our own manifest.json), no duplicates, every link
 * pointing at an allowed host. Throws the first problem found.
 */
export function validateBackupFiles(files: GesBackupFiles, allowedHosts: readonly string[], where: string): void {
  if (files.files.length === 0) {
    throw new ArchiverError(ErrorCodes.NoFiles, `GES listed no downloadable files for ${where}`);
  }
  const seen = new Set<string>();
  for (const file of files.files) {
    try {
      assertSafeFileName(file.name);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new ArchiverError(ErrorCodes.UnsafeFileName,
        `GES listed the file name ${JSON.stringify(file.name.slice(0, 120))} for ${where}, which is refused: ${reason}`, { cause: err });
    }
    for (const own of [ARCHIVE_MANIFEST_NAME, SHA256SUMS_NAME]) {
      if (file.name.toLowerCase() === own.toLowerCase()) {
        throw new ArchiverError(ErrorCodes.UnsafeFileName,
          `File name "${file.name}" in ${where} collides with the archive's own ${own}`);
      }
    }
    if (seen.has(file.name)) {
      throw new ArchiverError(ErrorCodes.GesBadResponse, `GES listed file "${file.name}" twice for ${where}`);
    }
    seen.add(file.name);
    assertAllowedLink(file.downloadLink, allowedHosts);
  }
}

/** Waits for `promise`, or rejects with `signal`'s reason (as an ArchiverError) as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(toArchiverError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toArchiverError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => signal.removeEventListener('abort', onAbort);
    void promise.then((value) => {
      settle();
      resolve(value);
    }, (err: unknown) => {
      settle();
      reject(err instanceof Error ? err : toArchiverError(err));
    });
  });
}

/**
 * Fresh links for one backup's files. Every refresh asks GES for the whole backup's links;
 * files that need a new link at the same time share one request, and a file that asks after
 * another file's refresh gets the links that refresh already brought. A shared request runs on
 * the backup's own signal, not on the signal of the file that started it: each file waits for
 * it with its own signal, so one file's failure (its copy aborts) never fails another file's
 * refresh.
 */
export class BackupLinks {
  private current: GesBackupFiles | undefined;
  private generation = 0;
  private inflight: Promise<void> | undefined;
  private readonly handedOut = new Map<string, number>();

  /**
   * `initial`: a listing already fetched (the orchestrator has one; a fan-out worker does not).
   * `signal`: the backup's (the run's or the invocation's); shared refreshes are cancelled only by it.
   * The copier checks every link against DOWNLOAD_ALLOWED_HOSTS before using it.
   */
  constructor(
    private readonly deps: { ges: GesClient; now?: (() => number) | undefined },
    private readonly target: { graphId: string; backupId: string },
    initial?: GesBackupFiles,
    private readonly signal?: AbortSignal,
  ) {
    this.current = initial;
  }

  initial(name: string): FileLink {
    this.handedOut.set(name, this.generation);
    return this.linkOf(name);
  }

  async fresh(name: string, signal: AbortSignal): Promise<FileLink> {
    const now = (this.deps.now ?? Date.now)();
    const usable = this.current !== undefined
      && this.generation > (this.handedOut.get(name) ?? -1)
      && this.linkOf(name).expiresAt > now;
    if (!usable) await untilAborted(this.refresh(), signal);
    this.handedOut.set(name, this.generation);
    return this.linkOf(name);
  }

  private refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    const pending = this.deps.ges
      .getBackupFiles(this.target.graphId, this.target.backupId, { signal: this.signal })
      .then((files) => {
        this.current = files;
        this.generation += 1;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    // Every waiter may have stopped waiting (their copies aborted): the outcome is then nobody's.
    pending.catch(() => undefined);
    this.inflight = pending;
    return pending;
  }

  private linkOf(name: string): FileLink {
    const file = this.current?.files.find((f) => f.name === name);
    if (!this.current || !file) {
      throw new ArchiverError(ErrorCodes.GesBadResponse,
        `GES no longer lists file "${name}" for graph ${this.target.graphId} backup ${this.target.backupId}`);
    }
    return toFileLink(file, this.current.receivedAt);
  }
}
