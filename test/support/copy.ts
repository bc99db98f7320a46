// What the copier's integration tests share: getLink as the orchestrator writes it (ask the
// emulated GES, compute the expiry, count the calls), the failure a copy ends with, and the
// check that a failed copy left nothing behind.
import type { CopyFileRequest, FileLink } from '../../lib/copy/copier.js';
import { linkExpiresAt } from '../../lib/links/link-expiry.js';
import type { ArchiverError } from '../../lib/errors.js';
import type { Emulator } from '../emulator/index.js';
import { links } from '../emulator/test-client.js';
import { listInProgressUploads, listKeys } from './aws.js';

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
