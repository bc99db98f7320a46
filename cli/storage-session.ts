import { S3Client } from '@aws-sdk/client-s3';
import pretty from 'pino-pretty';
import type { StorageDeps } from '../lib/catalog/types.js';
import { loadStorageConfig, type StorageConfig } from '../lib/config.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { createRetryPolicy } from '../lib/retry.js';
import type { CliIo } from './main.js';

/**
 * The composition root of `verify` and `list`: only the bucket, no GES client, so both run
 * with ARCHIVE_BUCKET (+ ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE and the AWS SDK variables)
 * and no Huawei credentials.
 */
export interface StorageSession {
  config: StorageConfig;
  deps: StorageDeps;
  signal: AbortSignal;
  dispose(): void;
}

function makeLogger(io: CliIo, verbose: boolean): Logger {
  // Quiet by default: the result goes to stdout; warnings and, with -v, details to stderr.
  const level = io.env['LOG_LEVEL'] ?? (verbose ? 'debug' : 'warn');
  if (io.env['LOG_FORMAT'] === 'json') return createLogger({ level, destination: io.stderr });
  const stream = pretty({
    colorize: io.stderr.isTTY === true,
    ignore: 'pid,hostname',
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    sync: true,
    destination: io.stderr,
  });
  return createLogger({ level, destination: stream });
}

export function openStorageSession(io: CliIo, opts: { verbose?: boolean }): StorageSession {
  const config = loadStorageConfig(io.env);
  const logger = makeLogger(io, opts.verbose === true);
  // Same settings as lib/runtime.ts createS3Client: the SDK reads region, credentials,
  // endpoint and checksum behaviour from its standard variables; maxAttempts 1 because
  // lib/retry.ts is the one retry policy.
  const s3 = new S3Client({ forcePathStyle: config.s3.forcePathStyle, maxAttempts: 1 });
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    logger.warn({ signal: sig }, 'interrupted: stopping');
    controller.abort(new ArchiverError(ErrorCodes.Aborted, `Interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    config,
    deps: { s3, config, logger, retry: createRetryPolicy() },
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      s3.destroy();
    },
  };
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Graph and backup ids become key prefixes: the same alphabet the run manifest allows. */
export function checkId(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (!ID.test(value)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `${option} must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter or digit)`);
  }
  return value;
}
