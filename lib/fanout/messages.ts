import { z } from 'zod';
import { describeIssues } from '../config.js';
import { assertSafeFileName } from '../copy/guard.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { ARCHIVE_MANIFEST_NAME } from '../archive/keys.js';

/**
 * The body of one copy message on the fan-out queue. It names the work, never a download link
 * (links expire and are credentials: the worker asks GES for a fresh one), and never a secret.
 * Strict: an unknown field is a producer bug and is refused rather than ignored.
 */
const id = (what: string) => z.string({ error: `${what} must be a string` })
  .min(1, `${what} must not be empty`)
  .max(128, `${what} must be at most 128 characters`)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, `${what} must contain only letters, digits, '.', '_' and '-'`);

const count = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`)
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

export const copyMessageSchema = z.strictObject({
  v: z.literal(1, { error: 'v must be 1 (the only message version)' }),
  type: z.literal('copy-file', { error: 'type must be "copy-file"' }),
  runId: id('runId'),
  graphId: id('graphId'),
  backupId: id('backupId'),
  fileName,
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

/** SQS's limit is 256 KiB; ours are a few hundred bytes. A larger body is not ours. */
const MAX_BODY_CHARS = 16 * 1024;

/** Parses and validates a message body. Throws ArchiverError MESSAGE_INVALID naming the field (never echoing the body). */
export function parseCopyMessage(body: string): CopyMessage {
  if (body.length > MAX_BODY_CHARS) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid copy message: body is ${body.length} characters, more than ${MAX_BODY_CHARS}`, { details: { fields: ['(body)'] } });
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new ArchiverError(ErrorCodes.MessageInvalid, 'Invalid copy message: body is not JSON', { details: { fields: ['(body)'] } });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, 'Invalid copy message: body must be a JSON object', { details: { fields: ['(root)'] } });
  }
  const parsed = copyMessageSchema.safeParse(data);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => (i.path.length === 0 ? '(root)' : i.path.map(String).join('.')));
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid copy message: ${describeIssues(parsed.error)}`, { details: { fields } });
  }
  return parsed.data;
}

export function serializeCopyMessage(message: CopyMessage): string {
  return JSON.stringify(copyMessageSchema.parse(message));
}
