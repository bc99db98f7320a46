import { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { parseEvent, withLambdaStack } from '../../../functions/lib/middleware.js';

function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const logger = createLogger({ destination: stream, base: { service: 'test' } });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A Lambda context whose deadline is `budgetMs` from now. */
function fakeContext(budgetMs: number, requestId = 'req-0001'): Context {
  const deadline = Date.now() + budgetMs;
  return {
    functionName: 'ges-archiver-test-fn',
    awsRequestId: requestId,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as unknown as Context;
}

const link = 'https://bucket.obs.cn-north-4.myhuaweicloud.com/x/part-0.bin?AccessKeyId=AK1&Expires=1&Signature=SeCrEtSig';

describe('withLambdaStack', () => {
  it('marks only the first invocation of the container as a cold start (runs first)', async () => {
    const { logger, records } = captureLogger();
    const handler = withLambdaStack(() => Promise.resolve('ok'), { name: 'fn', logger });
    await handler({}, fakeContext(60_000, 'a'));
    await handler({}, fakeContext(60_000, 'b'));
    const starts = records().filter((r) => r['msg'] === 'invocation started');
    expect(starts.map((r) => r['coldStart'])).toEqual([true, false]);
  });

  it('aborts the signal the safety margin before the deadline, so the handler can return gracefully', async () => {
    // Prepare
    const { logger } = captureLogger();
    const started = Date.now();
    const handler = withLambdaStack(async (_event: unknown, _ctx, { signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return { stoppedAfterMs: Date.now() - started, reason: (signal.reason as ArchiverError).code };
    }, { name: 'fn', safetyMarginMs: 400, hardMarginMs: 100, logger });

    // Act
    const result = await handler({}, fakeContext(600));

    // Assess: fired at ~200 ms (600 - 400), well before the 600 ms deadline.
    expect(result.reason).toBe(ErrorCodes.DeadlineExceeded);
    expect(result.stoppedAfterMs).toBeGreaterThanOrEqual(150);
    expect(result.stoppedAfterMs).toBeLessThan(450);
  });

  it('fails with DEADLINE_EXCEEDED before the deadline when the handler ignores the signal', async () => {
    const { logger, records } = captureLogger();
    const started = Date.now();
    const handler = withLambdaStack(() => new Promise<never>(() => undefined), { name: 'fn', safetyMarginMs: 300, hardMarginMs: 100, logger });

    await expect(handler({}, fakeContext(500))).rejects.toMatchObject({ code: ErrorCodes.DeadlineExceeded });

    expect(Date.now() - started).toBeLessThan(500);
    expect(records().filter((r) => r['level'] === 'error')).toHaveLength(1);
  });

  it('does not abort when the handler finishes in time, and runs without a deadline when the context has none', async () => {
    const { logger } = captureLogger();
    let seen: AbortSignal | undefined;
    const handler = withLambdaStack((_e: unknown, _c, { signal }) => {
      seen = signal;
      return Promise.resolve('ok');
    }, { name: 'fn', logger });

    await expect(handler({}, fakeContext(60_000))).resolves.toBe('ok');
    await new Promise((r) => setTimeout(r, 20));
    expect(seen?.aborted).toBe(false);
    await expect(handler({}, { functionName: 'local', awsRequestId: 'local-1' } as unknown as Context)).resolves.toBe('ok');
  });

  it('logs an error exactly once with its code, then rethrows the same error', async () => {
    const { logger, records } = captureLogger();
    const boom = new ArchiverError(ErrorCodes.GesThrottled, 'GES throttled the request', { retryable: true });
    const handler = withLambdaStack(() => Promise.reject(boom), { name: 'fn', logger });

    await expect(handler({}, fakeContext(60_000))).rejects.toBe(boom);

    const errors = records().filter((r) => r['level'] === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: ErrorCodes.GesThrottled, msg: 'invocation failed', err: { code: ErrorCodes.GesThrottled } });
  });

  it('gives an unclassified error the INTERNAL code in the log', async () => {
    const { logger, records } = captureLogger();
    const handler = withLambdaStack(() => Promise.reject(new TypeError('x is undefined')), { name: 'fn', logger });

    await expect(handler({}, fakeContext(60_000))).rejects.toThrow(TypeError);

    expect(records().filter((r) => r['level'] === 'error')[0]).toMatchObject({ code: ErrorCodes.Internal });
  });

  it('puts the request context on every line, and never a secret', async () => {
    const { logger, lines, records } = captureLogger();
    const handler = withLambdaStack((_e: unknown, _c, { logger: log }) => {
      log.info({ link, password: 'hunter2', headers: { 'X-Auth-Token': 'tok-abc' } }, 'downloading');
      return Promise.reject(new ArchiverError(ErrorCodes.DownloadFailed, `download of ${link} failed with X-Auth-Token: tok-abc`, {
        cause: new Error(`socket closed for ${link}`),
      }));
    }, { name: 'copyWorker', logger });

    await expect(handler({}, fakeContext(60_000, 'req-secret-test'))).rejects.toThrow(ArchiverError);

    expect(records().length).toBeGreaterThanOrEqual(3); // started, downloading, failed
    for (const r of records()) {
      expect(r).toMatchObject({ function: 'copyWorker', functionName: 'ges-archiver-test-fn', awsRequestId: 'req-secret-test' });
      expect(typeof r['coldStart']).toBe('boolean');
    }
    const all = lines.join('\n');
    expect(all).not.toMatch(/SeCrEtSig|AccessKeyId=|hunter2|tok-abc/);
  });

  it('rejects unknown options', () => {
    expect(() => withLambdaStack(() => Promise.resolve('ok'), { name: 'fn', timeoutMs: 5 } as never)).toThrow(/timeoutMs/);
  });
});

describe('parseEvent', () => {
  const schema = z.strictObject({ graphId: z.string().min(1), backupId: z.string().min(1) });

  it('returns the parsed event', () => {
    expect(parseEvent(schema, { graphId: 'g', backupId: 'b' })).toEqual({ graphId: 'g', backupId: 'b' });
  });

  it('turns issues into a 400-like ARGS_INVALID naming each field', () => {
    const err = (() => {
      try {
        parseEvent(schema, { graphId: 42 });
      } catch (e) {
        return e as ArchiverError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(ArchiverError);
    expect(err.code).toBe(ErrorCodes.ArgsInvalid);
    expect(err.message).toMatch(/graphId/);
    expect(err.message).toMatch(/backupId/);
    expect(err.details).toEqual({ statusCode: 400, fields: ['graphId', 'backupId'] });
  });

  it('uses MESSAGE_INVALID for queue messages', () => {
    let err: unknown;
    try {
      parseEvent(schema, null, { code: ErrorCodes.MessageInvalid, what: 'SQS event' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArchiverError);
    expect((err as ArchiverError).code).toBe(ErrorCodes.MessageInvalid);
    expect((err as ArchiverError).message).toMatch(/^Invalid SQS event: /);
  });
});
