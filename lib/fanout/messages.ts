import * as z from 'zod';
import { describeIssues } from '../config.js';
import { assertSafeFileName } from '../copy/guard.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { idSchema } from '../archive/run-manifest.js';
import { ARCHIVE_MANIFEST_NAME } from '../store/keys.js';

/**
 * The body of one copy message on the fan-out queue. It names the work, never a download link
 * (links expire and are credentials: the worker asks GES for a fresh one), and never a secret.
 * Strict: an unknown field is a producer bug and is refused rather than ignored.
 */
export const id = idSchema;

export const count = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`)
  .min(0, `${what} must not be negative`).max(100_000, `${what} must be at most 100000`);

const fileName = z.string({ error: 'fileName must be a string' }).superRefine((name, ctx) => {
  try {
    assertSafeFileName(name);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `fileName is not a safe single path segment (${err instanceof Error ? err.message : String(err)})` });
    return;
  }
  if (name.toLowerCase() === ARCHIVE_MANIFEST_NAME) ctx.addIssue({ code: 'custom', message: `fileName must not be ${ARCHIVE_MANIFEST_NAME}` });
});

/** The fields every message about one file starts with. */
const fileMessage = <T extends string>(type: T) => ({
  v: z.literal(1, { error: 'v must be 1 (the only message version)' }),
  type: z.literal(type, { error: `type must be "${type}"` }),
  runId: id('runId'),
  graphId: id('graphId'),
  backupId: id('backupId'),
  fileName,
});

export const copyMessageSchema = z.strictObject({
  ...fileMessage('copy-file'),
  expectedBytes: z.number({ error: 'expectedBytes must be a number' }).int('expectedBytes must be a whole number')
    .nonnegative('expectedBytes must not be negative').optional(),
  /** Set on a continuation: where the previous invocation left its copy checkpoint. */
  checkpointKey: z.string({ error: 'checkpointKey must be a string' }).min(1).max(1024).optional(),
  /** Set on a continuation: how many invocations handed this file over so far. */
  hop: count('hop').optional(),
  /** Set on a continuation: restarts from byte 0 (a changed source) over the whole chain. */
  restarts: count('restarts').optional(),
  /** Set on a continuation: hops in a row that stored no new part. */
  stalledHops: count('stalledHops').optional(),
});

export type CopyMessage = z.infer<typeof copyMessageSchema>;

const shardNumber = (what: string, min: number) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`)
  .min(min, `${what} must be at least ${min}`).max(10_000, `${what} must be at most 10000 (S3's part limit)`);

/** The continuation fields of a handed-over step, as on a copy message. */
const chainFields = {
  checkpointKey: z.string({ error: 'checkpointKey must be a string' }).min(1).max(1024).optional(),
  hop: count('hop').optional(),
  restarts: count('restarts').optional(),
  stalledHops: count('stalledHops').optional(),
};

/**
 * One shard of a range-sharded file (lib/fanout/shard-worker.ts): copy parts of the plan's
 * multipart upload. Names the plan (`planId`), never the upload, a link or a secret: the plan
 * is read from the bucket, and a message of an older plan changes nothing.
 */
export const shardMessageSchema = z.strictObject({
  ...fileMessage('copy-shard'),
  planId: id('planId'),
  /** 0-based. */
  shard: shardNumber('shard', 0),
  shardCount: shardNumber('shardCount', 2),
  ...chainFields,
}).refine((m) => m.shard < m.shardCount, { message: 'shard must be less than shardCount', path: ['shard'] });

export type ShardMessage = z.infer<typeof shardMessageSchema>;

/** The whole-file SHA-256 pass over a completed sharded file, continued after a handover. */
export const hashMessageSchema = z.strictObject({
  ...fileMessage('hash-file'),
  planId: id('planId'),
  ...chainFields,
});

export type HashMessage = z.infer<typeof hashMessageSchema>;

export function serializeShardMessage(message: ShardMessage | HashMessage): string {
  return JSON.stringify(message.type === 'copy-shard' ? shardMessageSchema.parse(message) : hashMessageSchema.parse(message));
}

/**
 * SQS's limit is 256 KiB. A copy message is a few hundred bytes; a planning message with an
 * explicit list carries up to MAX_PLAN_BACKUP_IDS ids of at most 128 characters. A larger body is not ours.
 */
const MAX_BODY_CHARS = 16 * 1024;
export const MAX_PLAN_BACKUP_IDS = 400;
const MAX_PLAN_BODY_CHARS = 64 * 1024;

/** Parses the JSON object of a body; MESSAGE_INVALID when it is not one (never echoing the body). */
export function bodyObject(body: string, what: string, maxChars = MAX_BODY_CHARS): Record<string, unknown> {
  if (body.length > maxChars) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid ${what}: body is ${body.length} characters, more than ${maxChars}`, { details: { fields: ['(body)'] } });
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid ${what}: body is not JSON`, { details: { fields: ['(body)'] } });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid ${what}: body must be a JSON object`, { details: { fields: ['(root)'] } });
  }
  return data as Record<string, unknown>;
}

export function validated<S extends z.ZodType>(schema: S, data: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => (i.path.length === 0 ? '(root)' : i.path.map(String).join('.')));
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid ${what}: ${describeIssues(parsed.error)}`, { details: { fields } });
  }
  return parsed.data;
}

/** Parses and validates a copy message body. Throws ArchiverError MESSAGE_INVALID naming the field (never echoing the body). */
export function parseCopyMessage(body: string): CopyMessage {
  return validated(copyMessageSchema, bodyObject(body, 'copy message'), 'copy message');
}

export function serializeCopyMessage(message: CopyMessage): string {
  return JSON.stringify(copyMessageSchema.parse(message));
}

/**
 * The body of one planning message (a scheduled run with many graphs sends one per graph): the
 * copy worker plans that graph exactly as an inline run does (lib/fanout/plan-graph.ts). Like a
 * copy message it names the work and nothing else.
 */
export const planGraphMessageSchema = z.strictObject({
  v: z.literal(1, { error: 'v must be 1 (the only message version)' }),
  type: z.literal('plan-graph', { error: 'type must be "plan-graph"' }),
  runId: id('runId'),
  graphId: id('graphId'),
  backups: z.union([
    z.literal('latest'),
    z.literal('all'),
    z.array(id('backup id')).min(1, 'an explicit backup list must not be empty').max(MAX_PLAN_BACKUP_IDS, `at most ${MAX_PLAN_BACKUP_IDS} backup ids`),
  ], { error: 'backups must be "latest", "all" or a list of backup ids' }),
  /** The run's trigger, recorded in the graph's report. */
  trigger: z.string({ error: 'trigger must be a string' }).min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'trigger must contain only letters, digits, \'.\', \'_\' and \'-\''),
});

export type PlanGraphMessage = z.infer<typeof planGraphMessageSchema>;

/** What the copy queue carries. */
export type QueueMessage = CopyMessage | PlanGraphMessage | ShardMessage | HashMessage;

/** Parses either kind of message, by its `type`; MESSAGE_INVALID names the field. */
export function parseQueueMessage(body: string): QueueMessage {
  const data = bodyObject(body, 'queue message', MAX_PLAN_BODY_CHARS);
  if (data['type'] === 'plan-graph') return validated(planGraphMessageSchema, data, 'plan-graph message');
  if (data['type'] === 'copy-file') return parseCopyMessage(body);
  if (data['type'] === 'copy-shard') return validated(shardMessageSchema, bodyObject(body, 'copy-shard message'), 'copy-shard message');
  if (data['type'] === 'hash-file') return validated(hashMessageSchema, bodyObject(body, 'hash-file message'), 'hash-file message');
  throw new ArchiverError(ErrorCodes.MessageInvalid, 'Invalid queue message: type must be "copy-file", "copy-shard", "hash-file" or "plan-graph"', { details: { fields: ['type'] } });
}

export function serializePlanGraphMessage(message: PlanGraphMessage): string {
  return JSON.stringify(planGraphMessageSchema.parse(message));
}
