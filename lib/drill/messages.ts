import * as z from 'zod';
import { bodyObject, count, id, validated } from '../fanout/messages.js';

/**
 * The body of one drill message on the drill queue: check this archived backup against its
 * manifest.json. It names the work (ids, the sample), never object contents or a secret. Strict:
 * an unknown field is a producer bug and is refused, naming the field, rather than ignored.
 *
 * A continuation (a backup too big for one invocation) carries `from`: the position in the
 * backup's sample order (the files its seed picks, in manifest order) of the first file still to
 * check; the files before it were checked by earlier invocations, whose problems were alerted then.
 */
export const drillMessageSchema = z.strictObject({
  v: z.literal(1, { error: 'v must be 1 (the only message version)' }),
  type: z.literal('drill-backup', { error: 'type must be "drill-backup"' }),
  drillId: id('drillId'),
  graphId: id('graphId'),
  backupId: id('backupId'),
  samplePercent: z.number({ error: 'samplePercent must be a number' }).gt(0, 'samplePercent must be more than 0').max(100, 'samplePercent must be at most 100'),
  /** Seeds the sample, so that every invocation of a chain picks the same files. */
  seed: z.number({ error: 'seed must be a number' }).int('seed must be a whole number').min(0, 'seed must not be negative').max(0xffff_ffff, 'seed must fit in 32 bits'),
  from: count('from').optional(),
  /** Invocations that handed this backup over so far. */
  hop: count('hop').optional(),
  /** Hops in a row that finished no file (a file too big to hash within one invocation). */
  stalledHops: count('stalledHops').optional(),
});

export type DrillMessage = z.infer<typeof drillMessageSchema>;

/** Parses and validates a drill message body. Throws ArchiverError MESSAGE_INVALID naming the field (never echoing the body). */
export function parseDrillMessage(body: string): DrillMessage {
  return validated(drillMessageSchema, bodyObject(body, 'drill message'), 'drill message');
}

export function serializeDrillMessage(message: DrillMessage): string {
  return JSON.stringify(drillMessageSchema.parse(message));
}
