// Baseline 2: a plain upload of the same number of bytes to the same store, with
// @aws-sdk/lib-storage (same part size and concurrency as the archiver). The bytes come from
// a pseudo-random block generated once, so producing them costs next to nothing.
// Prints {bytes, seconds} as one JSON line.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';

const [bucket, sizesArg, partSizeArg, queueArg, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const sizes = sizesArg.split(',').map(Number);
const block = randomBytes(1024 * 1024);

function source(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, total - sent);
      // A fresh copy per chunk: the SDK may hold on to chunks while parts are in flight.
      this.push(Buffer.from(block.subarray(0, n)));
      sent += n;
    },
  });
}

const s3 = new S3Client({ forcePathStyle: true });
const started = performance.now();
const limit = pLimit(Number(concurrency));
await Promise.all(sizes.map((size, i) => limit(async () => {
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: `baseline/${i}.bin`, Body: source(size), ContentLength: size },
    partSize: Number(partSizeArg),
    queueSize: Number(queueArg),
  }).done();
})));
const bytes = sizes.reduce((a, b) => a + b, 0);
process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - started) / 1000 })}\n`);
s3.destroy();
