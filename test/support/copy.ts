// What the copier's integration tests share: their servers and hooks (useCopyStack), getLink as
// the orchestrator writes it (ask the emulated GES, compute the expiry, count the calls), the
// failure a copy ends with, and the check that a failed copy left nothing behind.
import { AbortMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import type { CopyFileRequest, FileLink } from '../../lib/copy/copier.js';
import { linkExpiresAt } from '../../lib/links/link-expiry.js';
import type { ArchiverError } from '../../lib/errors.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../emulator/index.js';
import { issueToken, links } from '../emulator/test-client.js';
import { createTestBucket, listInProgressUploads, listKeys, s3Client } from './aws.js';

export interface GesLinkSource {
  getLink: CopyFileRequest['getLink'];
  calls: () => number;
}

/** Fresh links for one file of the emulator's graph `graphId`, backup `backupId`; `hook` runs before each request. */
export function gesLinkSource(emu: Emulator, token: string, graphId: string, backupId: string, name: string, hook?: (call: number) => void): GesLinkSource {
  let calls = 0;
  return {
    calls: () => calls,
    getLink: async (): Promise<FileLink> => {
      calls++;
      hook?.(calls);
      const receivedAt = Date.now();
      const file = (await links(emu, token, graphId, backupId)).find((f) => f.name === name);
      if (!file) throw new Error(`no link for ${name}`);
      return { url: file.download_link, expiresAt: linkExpiresAt(file.download_link, file.link_expired_time, receivedAt) };
    },
  };
}

/** The error `p` rejects with; fails the test when it resolves. */
export async function failure(p: Promise<unknown>): Promise<ArchiverError> {
  try {
    await p;
  } catch (err) {
    return err as ArchiverError;
  }
  throw new Error('expected the copy to fail');
}

/** No multipart upload left in the bucket, and no object at `key`. */
export async function expectNoTrace(bucket: string, key: string): Promise<void> {
  expect(await listInProgressUploads(bucket)).toEqual([]);
  expect(await listKeys(bucket, key)).not.toContain(key);
}

/** What a copier test file runs against: Swift's S3, its own bucket, the GES emulator and an undici Agent. */
export interface CopyStack {
  s3: S3Client;
  emu: Emulator;
  token: string;
  bucket: string;
  dispatcher: Agent;
}

/**
 * Registers the hooks every copier test file shares: before all, a bucket named after
 * `bucketPrefix` and an emulator serving `emulator` (handed to `use` once ready); before each
 * test, the emulator's faults and counters reset; after each, with `noUploadsLeft`, a check that
 * the test left no multipart upload (aborting any, so the next test starts clean); after all,
 * everything closed.
 */
export function useCopyStack(bucketPrefix: string, emulator: EmulatorOptions, use: (stack: CopyStack) => void, options: { noUploadsLeft?: boolean } = {}): void {
  let stack: CopyStack | undefined;
  beforeAll(async () => {
    const s3 = s3Client();
    const dispatcher = new Agent();
    const bucket = await createTestBucket(bucketPrefix);
    const emu = await startEmulator(emulator);
    stack = { s3, emu, bucket, dispatcher, token: await issueToken(emu) };
    use(stack);
  });
  afterAll(async () => {
    await stack?.emu.close();
    await stack?.dispatcher.close();
    stack?.s3.destroy();
  });
  beforeEach(() => {
    stack?.emu.faults.reset();
    stack?.emu.resetStats();
  });
  if (options.noUploadsLeft) {
    afterEach(async () => {
      if (!stack) return;
      const { s3, bucket } = stack;
      const left = await listInProgressUploads(bucket);
      await Promise.all(left.map((u) => s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))));
      expect(left.map((u) => u.Key)).toEqual([]);
    });
  }
}
