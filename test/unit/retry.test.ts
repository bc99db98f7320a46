import { ArchiverError } from '../../lib/errors.js';
import { createRetryPolicy } from '../../lib/retry.js';

const transient = (opts: { retryAfterMs?: number } = {}) => new ArchiverError('GES_UNAVAILABLE', 'try again', { retryable: true, ...opts });

describe('the retry policy', () => {
  it('retries retryable errors until success', async () => {
    const retry = createRetryPolicy({ baseDelayMs: 1, maxDelayMs: 2 });
    let calls = 0;
    const result = await retry(() => {
      calls += 1;
      return calls < 3 ? Promise.reject(transient()) : Promise.resolve('ok');
    });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry a non-retryable error and rethrows it unchanged', async () => {
    const retry = createRetryPolicy({ baseDelayMs: 1 });
    const err = new ArchiverError('BACKUP_NOT_FOUND', 'gone');
    let calls = 0;
    await expect(retry(() => {
      calls += 1;
      return Promise.reject(err);
    })).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  it('stops after maxAttempts with the last error', async () => {
    const retry = createRetryPolicy({ maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 });
    let calls = 0;
    await expect(retry(() => {
      calls += 1;
      return Promise.reject(transient());
    })).rejects.toMatchObject({ code: 'GES_UNAVAILABLE' });
    expect(calls).toBe(4);
  });

  it('waits at least Retry-After before the next attempt, and reports each retry', async () => {
    const retry = createRetryPolicy({ baseDelayMs: 1, maxDelayMs: 2 });
    const times: number[] = [];
    const delays: number[] = [];
    await retry(() => {
      times.push(Date.now());
      return times.length === 1 ? Promise.reject(transient({ retryAfterMs: 300 })) : Promise.resolve(1);
    }, { onRetry: (e) => delays.push(e.delayMs) });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(290);
    expect(delays[0]).toBeGreaterThanOrEqual(300);
  });

  it('gives up when the total time budget is spent, even with attempts left', async () => {
    const retry = createRetryPolicy({ maxAttempts: 100, baseDelayMs: 50, maxDelayMs: 50, maxElapsedMs: 200 });
    let calls = 0;
    await expect(retry(() => {
      calls += 1;
      return Promise.reject(transient());
    })).rejects.toMatchObject({ code: 'GES_UNAVAILABLE' });
    expect(calls).toBeLessThan(10);
  });

  it('an abort cuts a backoff wait short', async () => {
    const retry = createRetryPolicy({ baseDelayMs: 1 });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(retry(() => Promise.reject(transient({ retryAfterMs: 10_000 })), { signal: controller.signal })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
