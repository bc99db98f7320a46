import type { Context } from 'aws-lambda';
import { withLambdaStack } from '../../functions/lib/middleware.js';
import { DEADLINE_MARGINS } from '../../lib/deadline.js';
import { silentLogger } from '../../lib/log.js';

describe('the deadline of an invocation', () => {
  it('keeps its margins in order: inline and handover first, then the abort, the checkpoint save, the backstop', () => {
    // Assess
    const m = DEADLINE_MARGINS;
    expect(m.inlineKeepFreeMs).toBeGreaterThan(m.abortMs);
    expect(m.handoverMs).toBeGreaterThan(m.abortMs);
    expect(m.drillHandoverMs).toBeGreaterThan(m.abortMs);
    expect(m.abortMs).toBeGreaterThan(m.hardStopMs);
    expect(m.handoverSaveMs).toBeLessThan(m.abortMs - m.hardStopMs);
  });

  it('is computed once, at the start of the invocation, and handed to the handler', async () => {
    // Prepare: a context whose remaining time shrinks by 5 s at every call
    let remaining = 120_000;
    const context = {
      functionName: 'fn',
      awsRequestId: 'req-deadline',
      getRemainingTimeInMillis: () => (remaining -= 5_000),
    } as unknown as Context;
    const seen: (number | undefined)[] = [];
    const handler = withLambdaStack((_e: unknown, _c, { deadline }) => {
      seen.push(deadline);
      return Promise.resolve('ok');
    }, { name: 'fn', logger: silentLogger() });
    const before = Date.now();

    // Act
    await handler({}, context);
    const withoutDeadline = await new Promise<number | undefined>((resolve) => {
      const local = withLambdaStack((_e: unknown, _c, { deadline }) => {
        resolve(deadline);
        return Promise.resolve('ok');
      }, { name: 'fn', logger: silentLogger() });
      void local({}, { functionName: 'fn', awsRequestId: 'req-local' } as unknown as Context);
    });

    // Assess: the stack read the remaining time (the first read gives 115 s) and handed the deadline down once
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThanOrEqual(before + 100_000);
    expect(seen[0]).toBeLessThanOrEqual(Date.now() + 115_000);
    expect(withoutDeadline).toBeUndefined();
  });
});
