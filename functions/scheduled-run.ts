import { runScheduled } from '../lib/archive/index.js';
import { withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { getRuntime } from './lib/runtime.js';

/** EventBridge Scheduler → one run of the manifest (MANIFEST_URI). The event carries nothing we use. */
async function scheduledRun(_event: unknown, _context: unknown, { signal, logger }: InvocationTools) {
  const runtime = await getRuntime({ logger });
  return runScheduled(runtime, { signal });
}

export const handler = withLambdaStack(scheduledRun, { name: 'scheduledRun' });
