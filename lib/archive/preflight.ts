import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import { describeAwsFailure } from '../should-retry.js';
import { toS3Error } from '../store/s3-errors.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { RetryPolicy } from '../retry.js';

/**
 * The check of the archive bucket that comes before anything else (docs/contract.md, "Before
 * anything is copied"): a bucket that does not exist, an endpoint that cannot be reached or
 * credentials the store refuses stop the run with one message naming the bucket and the
 * endpoint (BUCKET_UNAVAILABLE, exit 2), before GES is asked for anything.
 *
 * 1. ListObjectsV2 under the archive prefix, one key at most: the bucket exists, the endpoint
 *    answers, the credentials are accepted and may list the archive. Not HeadBucket: the
 *    Lambda roles may list only with an `s3:prefix` condition (serverless.yml), which a
 *    HeadBucket, having no prefix, never meets, so it would answer 403 to a role that works.
 * 2. With `write` (not in a dry run, which writes nothing): CreateMultipartUpload and
 *    AbortMultipartUpload of `{prefix}_state/preflight`. That proves s3:PutObject (and the KMS
 *    key of an SSE-KMS bucket) without leaving anything behind: unlike a probe object it
 *    creates no version in a versioned bucket and nothing that Object Lock would keep.
 */
export interface BucketCheckDeps {
  s3: S3Client;
  retry: RetryPolicy;
  config: Pick<Config, 'archive'>;
}

/** Where the write probe's multipart upload is created (and aborted at once). */
export function preflightKey(prefix: string): string {
  return `${prefix}_state/preflight`;
}

/** Codes with which a store refuses the credentials themselves (not a permission). */
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired',
  'InvalidClientTokenId', 'CredentialsProviderError', 'InvalidSecurity',
]);
const REGION_CODES = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']);

/** "http://127.0.0.1:8080", from the request the SDK actually sent (whatever configured the endpoint). */
function endpointRecorder(): { record(request: unknown): void; get(): string } {
  let seen: string | undefined;
  return {
    record(request) {
      const req = request as { protocol?: string; hostname?: string; port?: number } | undefined;
      if (req?.hostname) seen = `${req.protocol ?? 'https:'}//${req.hostname}${req.port ? `:${req.port}` : ''}`;
    },
    get: () => seen ?? 'the configured S3 endpoint',
  };
}

function unavailable(bucket: string, endpoint: string, operation: string, err: unknown, needs: string): ArchiverError {
  const { remoteCode, status } = describeAwsFailure(err);
  const answer = `${remoteCode}${status === undefined ? '' : `, HTTP ${status}`}`;
  const details = { bucket, endpoint, operation, remoteCode, status };
  const on = `bucket "${bucket}" at ${endpoint}`;
  if (remoteCode === 'NoSuchBucket') {
    return new ArchiverError(ErrorCodes.BucketUnavailable,
      `The archive bucket "${bucket}" does not exist at ${endpoint} (${answer}): create it, or set ARCHIVE_BUCKET to an existing bucket`, { cause: err, details });
  }
  if (CREDENTIAL_CODES.has(remoteCode)) {
    return new ArchiverError(ErrorCodes.BucketUnavailable,
      `S3 refused the credentials for ${on} (${answer}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile or role in use)`, { cause: err, details });
  }
  if (REGION_CODES.has(remoteCode) || status === 301) {
    return new ArchiverError(ErrorCodes.BucketUnavailable,
      `The archive ${on} answered ${answer}: the bucket is in another region; set AWS_REGION to the bucket's region`, { cause: err, details });
  }
  if (status === 403) {
    return new ArchiverError(ErrorCodes.BucketUnavailable,
      `Access to the archive ${on} is denied (${operation}: ${answer}): the credentials need ${needs}`, { cause: err, details });
  }
  if (status === undefined) {
    return new ArchiverError(ErrorCodes.BucketUnavailable,
      `Cannot reach the S3 endpoint ${endpoint} for the archive bucket "${bucket}" (${answer}): check AWS_ENDPOINT_URL_S3, AWS_REGION and the network`,
      { cause: err, details, retryable: true });
  }
  return new ArchiverError(ErrorCodes.BucketUnavailable,
    `The archive ${on} cannot be used: S3 ${operation} failed (${answer})`, { cause: err, details, retryable: status >= 500 });
}

/** See the module comment. Throws BUCKET_UNAVAILABLE (or the signal's reason when aborted). */
export async function checkArchiveBucket(deps: BucketCheckDeps, options: { write: boolean; signal?: AbortSignal | undefined }): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  const { signal } = options;
  const endpoint = endpointRecorder();
  const listRights = `s3:ListBucket on it (with the prefix "${prefix}")`;
  const writeRights = `${listRights}, and s3:PutObject and s3:AbortMultipartUpload under "${prefix}"`;

  /** One request through the retry policy; a final failure is described by the store's own answer. */
  const send = async <T>(operation: string, needs: string, request: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> => {
    let last: unknown;
    try {
      return await deps.retry(async () => {
        try {
          return await request(signal);
        } catch (err) {
          last = err;
          throw toS3Error(err, operation, { key: prefix });
        }
      }, { signal });
    } catch (err) {
      if (isAbortError(err) || last === undefined) throw err;
      throw unavailable(bucket, endpoint.get(), operation, last, needs);
    }
  };

  const list = new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 });
  list.middlewareStack.add((next) => (args) => {
    endpoint.record(args.request);
    return next(args);
  }, { step: 'finalizeRequest', name: 'preflightEndpoint', priority: 'high' });
  await send('ListObjectsV2', listRights, (abortSignal) => deps.s3.send(list, { abortSignal }));
  if (!options.write) return;

  const key = preflightKey(prefix);
  const created = await send('CreateMultipartUpload', writeRights,
    (abortSignal) => deps.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), { abortSignal }));
  if (!created.UploadId) return;
  const uploadId = created.UploadId;
  await send('AbortMultipartUpload', writeRights,
    (abortSignal) => deps.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal }));
}
