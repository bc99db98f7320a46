import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { MAX_PARTS, MiB } from '../../lib/copy/part-size.js';
import { parseQueueMessage, serializeShardMessage, type HashMessage, type ShardMessage } from '../../lib/fanout/messages.js';
import { partsOfReceipts, shardLayout, shardRange, type ShardPlan, type ShardReceipt } from '../../lib/fanout/shards.js';
import { thrown } from '../support/thrown.js';

const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

describe('shard arithmetic', () => {
  it('cuts a file into shards of whole parts; the last shard takes the rest', () => {
    // Act
    const layout = shardLayout(16 * MiB + 777, 5 * MiB, 5 * MiB);

    // Assess
    expect(layout).toEqual({ totalBytes: 16 * MiB + 777, partSize: 5 * MiB, shardBytes: 5 * MiB, shardCount: 4 });
    expect([0, 1, 2, 3].map((i) => shardRange(layout!, i))).toEqual([
      { start: 0, end: 5 * MiB, firstPart: 1, lastPart: 1 },
      { start: 5 * MiB, end: 10 * MiB, firstPart: 2, lastPart: 2 },
      { start: 10 * MiB, end: 15 * MiB, firstPart: 3, lastPart: 3 },
      { start: 15 * MiB, end: 16 * MiB + 777, firstPart: 4, lastPart: 4 },
    ]);
  });

  it('rounds the shard size down to whole parts, and up to one part at least', () => {
    expect(shardLayout(100 * MiB, 16 * MiB, 40 * MiB)).toMatchObject({ partSize: 16 * MiB, shardBytes: 32 * MiB, shardCount: 4 });
    expect(shardLayout(100 * MiB, 16 * MiB, 6 * MiB)).toMatchObject({ partSize: 16 * MiB, shardBytes: 16 * MiB, shardCount: 7 });
  });

  it('keeps the whole file within 10,000 parts: the part size is the file\'s, not the shard\'s', () => {
    // Act: 10 TiB in shards of 8 GiB, minimum part 16 MiB
    const layout = shardLayout(10 * TiB, 16 * MiB, 8 * GiB)!;
    const last = shardRange(layout, layout.shardCount - 1);

    // Assess
    expect(layout.partSize).toBe(1049 * MiB); // ceil(10 TiB / 10,000) rounded up to a MiB
    expect(layout.shardBytes % layout.partSize).toBe(0);
    expect(last.end).toBe(10 * TiB);
    expect(last.lastPart).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('does not shard a file of one shard or less, nor with sharding off', () => {
    expect(shardLayout(5 * MiB, 5 * MiB, 5 * MiB)).toBeUndefined();
    expect(shardLayout(6 * MiB, 5 * MiB, 5 * MiB)).toMatchObject({ shardCount: 2 });
    expect(shardLayout(6 * MiB, 16 * MiB, 5 * MiB)).toBeUndefined(); // one part is the whole file
    expect(shardLayout(100 * GiB, 16 * MiB, 0)).toBeUndefined();
  });

  it('refuses a shard number outside the plan', () => {
    const layout = shardLayout(16 * MiB, 5 * MiB, 5 * MiB)!;
    expect(() => shardRange(layout, 4)).toThrow(RangeError);
    expect(() => shardRange(layout, -1)).toThrow(RangeError);
  });
});

describe('the parts of shard receipts', () => {
  const plan: ShardPlan = {
    version: 1, planId: 'p1', fileName: 'f', key: 'k', uploadId: 'u', totalBytes: 16 * MiB, partSize: 5 * MiB, shardBytes: 10 * MiB,
    shardCount: 2, sourceEtag: '"e"', createdAt: '2026-01-01T00:00:00Z',
  };
  const receipt = (shard: number, numbers: number[], planId = 'p1'): ShardReceipt => ({
    planId, shard, bytes: 1, completedAt: '', parts: numbers.map((n) => ({ partNumber: n, etag: `"${n}"` })),
  });

  it('lists every part in order when every shard has its own parts', () => {
    const { parts, missing } = partsOfReceipts(plan, [receipt(1, [3, 4]), receipt(0, [1, 2])]);
    expect(missing).toEqual([]);
    expect(parts.map((p) => p.partNumber)).toEqual([1, 2, 3, 4]);
  });

  it('names the shards whose receipt is missing, of another plan, or with other parts', () => {
    expect(partsOfReceipts(plan, [receipt(0, [1, 2])]).missing).toEqual([1]);
    expect(partsOfReceipts(plan, [receipt(0, [1, 2]), receipt(1, [3, 4], 'old')]).missing).toEqual([1]);
    expect(partsOfReceipts(plan, [receipt(0, [1]), receipt(1, [3, 4])]).missing).toEqual([0]);
  });
});

describe('copy-shard and hash-file messages', () => {
  const SHARD: ShardMessage = {
    v: 1, type: 'copy-shard', runId: 'run-1', graphId: 'g-1', backupId: 'b-1', fileName: 'huge.bin', planId: '7b0c1c1e-0c4f-4f57-9a0e-3b9d3f3f3f3f', shard: 2, shardCount: 4,
  };
  const HASH: HashMessage = { v: 1, type: 'hash-file', runId: 'run-1', graphId: 'g-1', backupId: 'b-1', fileName: 'huge.bin', planId: 'p-1', checkpointKey: 'x/hash.json', hop: 1 };

  it('round-trip', () => {
    expect(parseQueueMessage(serializeShardMessage(SHARD))).toEqual(SHARD);
    expect(parseQueueMessage(serializeShardMessage(HASH))).toEqual(HASH);
  });

  it.each([
    ['an unknown field (the upload id)', { ...SHARD, uploadId: 'abc' }, 'uploadId'],
    ['a download link', { ...SHARD, link: 'https://obs.example/x?Signature=abc' }, 'link'],
    ['a missing planId', { ...SHARD, planId: undefined }, 'planId'],
    ['a shard past the count', { ...SHARD, shard: 4 }, 'shard'],
    ['a fractional shard', { ...SHARD, shard: 1.5 }, 'shard'],
    ['a single shard', { ...SHARD, shard: 0, shardCount: 1 }, 'shardCount'],
    ['a path in fileName', { ...SHARD, fileName: '../x' }, 'fileName'],
    ['a negative hop', { ...SHARD, hop: -1 }, 'hop'],
    ['a hash-file message without planId', { ...HASH, planId: undefined }, 'planId'],
  ])('refuses %s, naming the field', (_what, message, field) => {
    // Act
    const err = thrown(() => parseQueueMessage(JSON.stringify(message)));

    // Assess
    expect(err).toBeInstanceOf(ArchiverError);
    expect((err as ArchiverError).code).toBe(ErrorCodes.MessageInvalid);
    // An unknown key is the object's issue (zod's path is the object), named in the message.
    const unknownKey = !(field in SHARD) && !(field in HASH);
    expect((err as ArchiverError).details?.['fields']).toContain(unknownKey ? '(root)' : field);
    expect((err as ArchiverError).message).toContain(field);
    expect((err as ArchiverError).message).not.toContain('Signature=abc');
  });
});
