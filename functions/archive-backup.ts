import * as z from 'zod';
import { archiveOneBackup } from '../lib/app/scheduled-run.js';
import { idSchema } from '../lib/archive/run-manifest.js';
import { ErrorCodes } from '../lib/errors.js';
import { recordRunMetrics } from '../lib/metrics/index.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { withCopyMetrics } from './lib/metrics.js';
import { getRuntime } from './lib/runtime.js';

// The one id rule (lib/ids.ts), as for a manifest entry: anything else never reaches a URL or an S3 key.
const ArchiveBackupEvent = z.strictObject({ graphId: idSchema('graphId'), backupId: idSchema('backupId') });

/** Manual invocation: `{ "graphId": "…", "backupId": "…" }` → the backup's result. */
async function archiveBackup(event: unknown, _context: unknown, { signal, logger, metrics }: InvocationTools) {
  const { graphId, backupId } = parseEvent(ArchiveBackupEvent, event, { code: ErrorCodes.ArgsInvalid });
  const runtime = withCopyMetrics(await getRuntime({ logger }), metrics);
  const report = await archiveOneBackup(runtime, { graphId, backupId }, { signal });
  recordRunMetrics(metrics, report);
  return report;
}

export const handler = withLambdaStack(archiveBackup, { name: 'archiveBackup' });
