// AWS S3's conditional writes in front of Swift, for tests. Swift's s3api answers 501 to
// If-None-Match / If-Match on PutObject and 412 to every If-Match on CompleteMultipartUpload, so
// a client given this middleware checks the condition itself (HeadObject through a plain client),
// answers as AWS does, and sends the write on without the header when the condition holds:
// - `If-None-Match: *` fails with 412 PreconditionFailed when the key holds an object;
// - `If-Match: <etag>` fails with 412 when the key holds another object, 404 NoSuchKey when none;
// - a failed Complete leaves its multipart upload in place (it may be completed again);
// - the client's conditional writes are serialised, so check and write are one step, as on AWS.
import { AbortMultipartUploadCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export type ConditionalCommand = 'PutObject' | 'CompleteMultipartUpload';

export interface ConditionalCall {
  command: ConditionalCommand;
  key: string;
  ifNoneMatch: string | undefined;
  ifMatch: string | undefined;
  /** What the client was answered: the write went through ('stored'), or the error's status. */
  outcome: 'stored' | 404 | 409 | 412 | 'failed';
}

export interface ConditionalWritesOptions {
  /**
   * Runs inside the write's serialised turn, before its condition is checked: where a test plays
   * another run writing at the key between the copier's checks and its commit. `n` counts the
   * conditional writes of the client from 1.
   */
  before?(call: { command: ConditionalCommand; key: string; n: number }): Promise<void>;
  /** Answer this write 409 ConditionalRequestConflict (a Complete's upload is aborted first: on AWS it is gone). */
  conflict?(call: { command: ConditionalCommand; key: string; n: number }): boolean;
}

interface WriteInput {
  Bucket?: string;
  Key?: string;
  UploadId?: string;
  IfNoneMatch?: string;
  IfMatch?: string;
}

function s3Failure(status: number, name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/**
 * Adds AWS's conditional writes to `client`; `direct` (a client without them) checks the key.
 * Returns the conditional writes seen, in order.
 */
export function awsConditionalWrites(client: S3Client, direct: S3Client, options: ConditionalWritesOptions = {}): { calls: ConditionalCall[] } {
  const calls: ConditionalCall[] = [];
  let queue = Promise.resolve();
  let n = 0;
  client.middlewareStack.add((next, context) => async (args) => {
    const command = context.commandName?.replace(/Command$/, '');
    const input = args.input as WriteInput;
    if ((command !== 'PutObject' && command !== 'CompleteMultipartUpload') || (input.IfNoneMatch === undefined && input.IfMatch === undefined)) {
      return next(args);
    }
    const call: ConditionalCall = { command, key: input.Key ?? '', ifNoneMatch: input.IfNoneMatch, ifMatch: input.IfMatch, outcome: 'failed' };
    calls.push(call);
    const turn = queue.then(async () => {
      const seen = { command: call.command, key: call.key, n: ++n };
      await options.before?.(seen);
      if (options.conflict?.(seen)) {
        if (command === 'CompleteMultipartUpload') {
          await direct.send(new AbortMultipartUploadCommand({ Bucket: input.Bucket, Key: input.Key, UploadId: input.UploadId }));
        }
        call.outcome = 409;
        throw s3Failure(409, 'ConditionalRequestConflict', 'A conflicting conditional operation is currently in progress against this resource.');
      }
      const etag = await direct.send(new HeadObjectCommand({ Bucket: input.Bucket, Key: input.Key })).then((h) => h.ETag, () => undefined);
      if (input.IfNoneMatch !== undefined && etag !== undefined) {
        call.outcome = 412;
        throw s3Failure(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
      if (input.IfMatch !== undefined && etag === undefined) {
        call.outcome = 404;
        throw s3Failure(404, 'NoSuchKey', 'The specified key does not exist.');
      }
      if (input.IfMatch !== undefined && etag !== input.IfMatch) {
        call.outcome = 412;
        throw s3Failure(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
      delete input.IfNoneMatch;
      delete input.IfMatch;
      const out = await next(args);
      call.outcome = 'stored';
      return out;
    });
    queue = turn.then(() => undefined, () => undefined);
    return turn;
  }, { step: 'initialize', name: 'awsConditionalWritesForTest' });
  return { calls };
}

export interface SentWrite {
  command: ConditionalCommand;
  ifNoneMatch: string | undefined;
  ifMatch: string | undefined;
  /** The store's HTTP status (an error's, or the success's). */
  status: number | undefined;
}

/** Records every PutObject and CompleteMultipartUpload as it goes on the wire (each attempt): its condition headers and the store's answer. */
export function recordWrites(client: S3Client): SentWrite[] {
  const sent: SentWrite[] = [];
  client.middlewareStack.add((next, context) => async (args) => {
    const command = context.commandName?.replace(/Command$/, '');
    if (command !== 'PutObject' && command !== 'CompleteMultipartUpload') return next(args);
    const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
    const write: SentWrite = { command, ifNoneMatch: headers['if-none-match'], ifMatch: headers['if-match'], status: undefined };
    sent.push(write);
    try {
      const out = await next(args);
      write.status = (out.response as { statusCode?: number }).statusCode;
      return out;
    } catch (err) {
      write.status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw err;
    }
  }, { step: 'finalizeRequest', priority: 'low', name: 'recordWritesForTest' });
  return sent;
}
