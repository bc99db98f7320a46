import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ArchiverError } from '../../lib/errors.js';
import { openDownload } from '../../lib/copy/download.js';
import { sqsError } from '../../lib/fanout/sqs.js';
import { describeAwsFailure, headerValue, parseRetryAfter } from '../../lib/should-retry.js';
import { toS3Error } from '../../lib/store/s3-errors.js';

/** An error as the AWS SDK throws it: a name, maybe a code, maybe an HTTP status. */
function sdkError(fields: { name?: string; code?: string; message?: string; status?: number }): Error {
  const err = new Error(fields.message ?? 'failed') as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
  if (fields.name !== undefined) err.name = fields.name;
  if (fields.code !== undefined) err.code = fields.code;
  if (fields.status !== undefined) err.$metadata = { httpStatusCode: fields.status };
  return err;
}

function retryableOf(err: unknown): boolean {
  if (!(err instanceof ArchiverError)) throw new Error(`not an ArchiverError: ${String(err)}`);
  return err.retryable;
}

describe('the one retry classifier', () => {
  it('retries the same network failures for S3 and SQS, and not a programming error without an answer', () => {
    // Act
    const reset = sdkError({ code: 'ECONNRESET' });
    const wrapped = sdkError({ message: 'AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9' });
    const badArgument = sdkError({ code: 'ERR_INVALID_ARG_TYPE' });

    // Assess
    expect([retryableOf(toS3Error(reset, 'GetObject')), retryableOf(sqsError('SendMessage', reset))]).toEqual([true, true]);
    expect([retryableOf(toS3Error(wrapped, 'GetObject')), retryableOf(sqsError('SendMessage', wrapped))]).toEqual([true, true]);
    expect([retryableOf(toS3Error(badArgument, 'GetObject')), retryableOf(sqsError('SendMessage', badArgument))]).toEqual([false, false]);
  });

  it('does not retry an SQS failure that had no answer and no network code (missing credentials)', () => {
    // Act
    const err = sqsError('SendMessage', sdkError({ name: 'CredentialsProviderError', message: 'Could not load credentials from any providers' }));

    // Assess
    expect(retryableOf(err)).toBe(false);
    expect(err.message).toBe('SQS SendMessage failed: CredentialsProviderError');
  });

  it('reads one status table for AWS: 408, 429 and 5xx retry, other 4xx do not', () => {
    // Act
    const retryable = [400, 403, 404, 408, 429, 500, 503].map((status) => describeAwsFailure(sdkError({ name: 'Unknown', status })).retryable);

    // Assess
    expect(retryable).toEqual([false, false, false, true, true, true, true]);
  });

  it('reads Retry-After with one grammar: delay-seconds (fractions too) or an HTTP-date', () => {
    // Prepare
    const now = Date.parse('2025-01-01T00:00:00Z');

    // Act, Assess
    expect(parseRetryAfter(' 2 ', now)).toBe(2000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('1e3', now)).toBeUndefined();
    expect(headerValue({ 'Retry-After': ['4', '9'] }, 'retry-after')).toBe('4');
    expect(headerValue({ 'retry-after': '  ' }, 'retry-after')).toBeUndefined();
  });
});

describe('a download link, classified by the same rules', () => {
  let server: Server;
  let port: number;
  let answer: (res: import('node:http').ServerResponse) => void;

  beforeAll(async () => {
    server = createServer((_req, res) => answer(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('honours a fractional Retry-After on a 503', async () => {
    // Prepare
    answer = (res) => res.writeHead(503, { 'retry-after': '0.5' }).end();

    // Act
    const err = await openDownload(`http://127.0.0.1:${port}/f`, { offset: 0, signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(ArchiverError);
    expect(err).toMatchObject({ code: 'DOWNLOAD_FAILED', retryable: true, retryAfterMs: 500 });
  });

  it('retries a refused connection but not a TLS handshake with a server that speaks plain HTTP', async () => {
    // Prepare: a port nobody listens on, and the plain HTTP server addressed as https
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    answer = (res) => res.writeHead(200, { 'content-length': '0' }).end();

    // Act
    const refused = await openDownload(`http://127.0.0.1:${closedPort}/f`, { offset: 0, signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
    const tls = await openDownload(`https://127.0.0.1:${port}/f`, { offset: 0, signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);

    // Assess
    expect(refused).toMatchObject({ code: 'DOWNLOAD_FAILED', retryable: true, details: { errorCode: 'ECONNREFUSED' } });
    expect(tls).toMatchObject({ code: 'DOWNLOAD_FAILED', retryable: false });
  });
});
