// AWS SDK clients and small helpers for tests against the local stack started by
// global-setup.ts: Swift for S3 (TEST_S3_ENDPOINT), fauxqs for SQS and SNS (TEST_SQS_ENDPOINT).
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client,
  type MultipartUpload,
} from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set: run tests through \`npm test\` (jest's global setup starts the local stack)`);
  }
  return value;
}

function credentials(): { accessKeyId: string; secretAccessKey: string } {
  return {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
  };
}

export function s3Endpoint(): string {
  return requireEnv('TEST_S3_ENDPOINT');
}

export function sqsEndpoint(): string {
  return requireEnv('TEST_SQS_ENDPOINT');
}

/** Path-style S3 client for Swift's s3api; checksums only when required (Swift rejects aws-chunked). */
export function s3Client(): S3Client {
  return new S3Client({
    endpoint: s3Endpoint(),
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: credentials(),
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function sqsClient(): SQSClient {
  return new SQSClient({ endpoint: sqsEndpoint(), region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

export function snsClient(): SNSClient {
  return new SNSClient({ endpoint: sqsEndpoint(), region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

let sharedS3: S3Client | undefined;
/** One client per test file for the helpers below, created on first use. */
function defaultS3(): S3Client {
  sharedS3 ??= s3Client();
  return sharedS3;
}

/** A unique, valid bucket name starting with `prefix` (lower-cased, trimmed to fit). */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'test';
  return `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Creates a fresh bucket and returns its name. */
export async function createTestBucket(prefix: string, client: S3Client = defaultS3()): Promise<string> {
  const bucket = uniqueName(prefix);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Multipart uploads started but neither completed nor aborted. */
export async function listInProgressUploads(bucket: string, client: S3Client = defaultS3()): Promise<MultipartUpload[]> {
  const uploads: MultipartUpload[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker, UploadIdMarker }));
    uploads.push(...(page.Uploads ?? []));
    if (!page.IsTruncated) return uploads;
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Every key in the bucket (under `prefix`), in listing order. */
export async function listKeys(bucket: string, prefix?: string, client: S3Client = defaultS3()): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken !== undefined);
  return keys;
}

/** The whole object in memory: for test-sized objects only. */
export async function getObjectBytes(bucket: string, key: string, client: S3Client = defaultS3()): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (response.Body === undefined) throw new Error(`GetObject ${bucket}/${key} returned no body`);
  return Buffer.from(await response.Body.transformToByteArray());
}
