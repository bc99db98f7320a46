// Stops what global-setup.ts started (it leaves the handles on globalThis: jest runs both
// in its main process). Servers given through TEST_*_ENDPOINT are left alone.
const LOCAL_STACK_KEY = Symbol.for('ges-archiver.local-stack');

interface Stoppable {
  stop(): Promise<void>;
}

export default async function globalTeardown(): Promise<void> {
  const store = globalThis as Record<symbol, Stoppable[] | undefined>;
  const started = store[LOCAL_STACK_KEY] ?? [];
  delete store[LOCAL_STACK_KEY];
  const results = await Promise.allSettled(started.map((s) => s.stop()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    throw new AggregateError(failed.map((r) => r.reason as unknown), 'stopping the local stack failed');
  }
}
