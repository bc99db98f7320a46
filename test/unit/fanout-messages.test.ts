import { MAX_PLAN_BACKUP_IDS, parseCopyMessage, parseQueueMessage, serializeCopyMessage, serializePlanGraphMessage, type CopyMessage, type PlanGraphMessage } from '../../lib/fanout/messages.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';

const VALID: CopyMessage = {
  v: 1, type: 'copy-file', runId: '20261127T133000Z-1a2b3c4d', graphId: '4c5f882d-a813-4d78-a8e3-6d3212ddd121',
  backupId: 'ada3e720-ab87-48cb-bff7-3ec5ae1a9652', fileName: 'vertices.bin', expectedBytes: 1024,
};

function refusal(body: string): ArchiverError {
  try {
    parseCopyMessage(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ArchiverError);
    return err as ArchiverError;
  }
  throw new Error('expected the message to be refused');
}

describe('copy messages', () => {
  it('round-trips a valid message, with and without the optional fields', () => {
    // Prepare
    const minimal = { ...VALID };
    delete minimal.expectedBytes;
    const continuation = { ...VALID, checkpointKey: 'ges-backups/_state/g/b/checkpoints/vertices.bin.json' };

    // Act / Assess
    expect(parseCopyMessage(serializeCopyMessage(VALID))).toEqual(VALID);
    expect(parseCopyMessage(serializeCopyMessage(minimal))).toEqual(minimal);
    expect(parseCopyMessage(serializeCopyMessage(continuation))).toEqual(continuation);
  });

  it.each([
    ['an unknown field (a download link)', { ...VALID, downloadLink: 'https://obs.example/x?Signature=abc' }, 'downloadLink'],
    ['a wrong version', { ...VALID, v: 2 }, 'v'],
    ['a wrong type', { ...VALID, type: 'copy' }, 'type'],
    ['a missing graphId', { ...VALID, graphId: undefined }, 'graphId'],
    ['a backupId with a slash', { ...VALID, backupId: 'a/b' }, 'backupId'],
    ['a path in fileName', { ...VALID, fileName: '../etc/passwd' }, 'fileName'],
    ['manifest.json as fileName', { ...VALID, fileName: 'manifest.json' }, 'fileName'],
    ['a negative size', { ...VALID, expectedBytes: -1 }, 'expectedBytes'],
    ['a fractional size', { ...VALID, expectedBytes: 1.5 }, 'expectedBytes'],
  ])('refuses %s with MESSAGE_INVALID naming the field', (_what, body, field) => {
    // Act
    const err = refusal(JSON.stringify(body));

    // Assess
    expect(err.code).toBe(ErrorCodes.MessageInvalid);
    expect(err.message).toContain(field);
    expect(err.details?.['fields']).toContain(field === 'downloadLink' ? '(root)' : field);
  });

  it('refuses bodies that are not a JSON object, without echoing them', () => {
    // Act
    const notJson = refusal('token=s3cr3t not json');
    const array = refusal('[1,2]');
    const huge = refusal(JSON.stringify({ ...VALID, fileName: 'x'.repeat(20_000) }));

    // Assess
    for (const err of [notJson, array, huge]) expect(err.code).toBe(ErrorCodes.MessageInvalid);
    expect(notJson.message).not.toContain('s3cr3t');
    expect(huge.message).not.toContain('xxxx');
  });
});

describe('plan-graph messages', () => {
  const PLAN: PlanGraphMessage = { v: 1, type: 'plan-graph', runId: '20261127T133000Z-1a2b3c4d', graphId: 'graph-1', backups: 'latest', trigger: 'schedule' };

  it('round-trips through parseQueueMessage, which still parses copy messages', () => {
    expect(parseQueueMessage(serializePlanGraphMessage(PLAN))).toEqual(PLAN);
    expect(parseQueueMessage(serializePlanGraphMessage({ ...PLAN, backups: ['b-1', 'b-2'] }))).toEqual({ ...PLAN, backups: ['b-1', 'b-2'] });
    expect(parseQueueMessage(serializeCopyMessage(VALID))).toEqual(VALID);
  });

  it.each([
    ['an unknown type', { ...PLAN, type: 'plan' }, 'type'],
    ['an unknown field', { ...PLAN, link: 'https://x' }, '(root)'],
    ['a bad selector', { ...PLAN, backups: 'newest' }, 'backups'],
    ['an id with a slash in the list', { ...PLAN, backups: ['a/b'] }, 'backups.0'],
    ['too many ids', { ...PLAN, backups: Array.from({ length: MAX_PLAN_BACKUP_IDS + 1 }, (_, i) => `b-${i}`) }, 'backups'],
  ])('refuses %s with MESSAGE_INVALID naming the field', (_what, body, field) => {
    let caught: unknown;
    try {
      parseQueueMessage(JSON.stringify(body));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ArchiverError);
    expect((caught as ArchiverError).code).toBe(ErrorCodes.MessageInvalid);
    expect((caught as ArchiverError).details?.['fields']).toEqual(expect.arrayContaining([field]));
  });
});
