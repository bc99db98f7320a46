// contentMd5, and what the S3 SDK makes of an explicit ContentMD5 under both checksum settings:
// the header goes out once, with our value, and the body stays a plain (not aws-chunked) body.
import { PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { contentMd5 } from '../../../lib/copy/hasher.js';

interface Captured {
  headers: Record<string, string>;
  body: unknown;
}

/** A client whose transport records the signed request and answers 200 without any network. */
function capturingClient(requestChecksumCalculation: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED'): { s3: S3Client; captured: Captured[] } {
  const captured: Captured[] = [];
  const s3 = new S3Client({
    region: 'us-east-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, requestChecksumCalculation,
    requestHandler: {
      handle: (request: { headers: Record<string, string>; body: unknown }) => {
        captured.push({ headers: { ...request.headers }, body: request.body });
        return Promise.resolve({ response: { statusCode: 200, headers: { etag: '"e"' }, body: Buffer.alloc(0) } });
      },
    } as never,
  });
  return { s3, captured };
}

const md5Headers = (c: Captured | undefined): string[] =>
  Object.entries(c?.headers ?? {}).filter(([k]) => k.toLowerCase() === 'content-md5').map(([, v]) => v);

describe('contentMd5', () => {
  it('is the base64 MD5 of the bytes', () => {
    expect(contentMd5(Buffer.alloc(0))).toBe('1B2M2Y8AsgTpgAmY7PhCfg==');
    expect(contentMd5(Buffer.from('abc'))).toBe('kAFQmDzST7DWlj99KOF/cg==');
  });

  it('changes when one byte changes', () => {
    const a = Buffer.alloc(1024, 7);
    const b = Buffer.from(a);
    b[512] = 8;
    expect(contentMd5(a)).not.toBe(contentMd5(b));
  });
});

describe.each(['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const)('the S3 SDK with requestChecksumCalculation %s', (mode) => {
  const body = Buffer.from('hello, store');
  const md5 = contentMd5(body);

  it.each([
    ['PutObject', () => new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body, ContentLength: body.length, ContentMD5: md5 })],
    ['UploadPart', () => new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId: 'u', PartNumber: 1, Body: body, ContentLength: body.length, ContentMD5: md5 })],
  ] as const)('sends %s with exactly our Content-MD5 and a plain body', async (_name, make) => {
    // Prepare
    const { s3, captured } = capturingClient(mode);
    // Act
    await s3.send(make() as PutObjectCommand);
    // Assess
    expect(md5Headers(captured[0])).toEqual([md5]);
    expect(captured[0]?.headers['content-length']).toBe(String(body.length));
    expect(captured[0]?.headers['content-encoding']).toBeUndefined();
    expect(Buffer.isBuffer(captured[0]?.body) || captured[0]?.body instanceof Uint8Array).toBe(true);
    if (mode === 'WHEN_SUPPORTED') expect(captured[0]?.headers['x-amz-checksum-crc32']).toBeDefined();
    else expect(captured[0]?.headers['x-amz-checksum-crc32']).toBeUndefined();
    s3.destroy();
  });
});
