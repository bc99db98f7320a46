import type { StorageDeps } from '../lib/catalog/types.js';
import { loadStorageConfig, type StorageConfig } from '../lib/config.js';
import { isSafeId } from '../lib/ids.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { createRetryPolicy } from '../lib/retry.js';
import { createS3Client, withRetryLogging } from '../lib/app/aws-clients.js';
import { createCliOutput, onInterrupt, type OutputFlags } from './plumbing.js';
import type { Progress } from './progress.js';
import type { CliIo } from './io.js';

/**
 * The composition root of `verify` and `list`: only the bucket, no GES client, so both run
 * with ARCHIVE_BUCKET (+ ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE and the AWS SDK variables)
 * and no Huawei credentials.
 */
export interface StorageSession {
  config: StorageConfig;
  deps: StorageDeps;
  signal: AbortSignal;
  /** Off unless the command shows progress (`verify`), and with -q or --no-progress. */
  progress: Progress;
  dispose(): void;
}

export function openStorageSession(io: CliIo, flags: OutputFlags, showsProgress = false): StorageSession {
  const config = loadStorageConfig(io.env);
  // Quiet by default: the result goes to stdout; warnings and, with -v, details to stderr.
  const { logger, progress } = createCliOutput(io, { flags, progress: showsProgress, defaultLevel: 'warn', progressOptions: { estimated: false } });
  const s3 = createS3Client(config);
  const interrupt = onInterrupt(logger, 'stopping');
  return {
    config,
    deps: { s3, config, logger, retry: withRetryLogging(createRetryPolicy(), logger) },
    signal: interrupt.signal,
    progress,
    dispose() {
      progress.stop();
      interrupt.dispose();
      s3.destroy();
    },
  };
}

/** Graph and backup ids become key prefixes: the one id rule (lib/ids.ts). */
export function checkId(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (!isSafeId(value)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `${option} must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter or digit)`);
  }
  return value;
}
