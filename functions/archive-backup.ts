import { z } from 'zod';
import { archiveOneBackup } from '../lib/app/scheduled-run.js';
import { ErrorCodes } from '../lib/errors.js';
import { recordRunMetrics } from '../lib/metrics/index.js';
import { parseEvent, withLambdaStack, type InvocationTools } from './lib/middleware.js';
import { withCopyMetrics } from './lib/metrics.js';
import { getRuntime } from './lib/runtime.js';

// GES ids are UUID-like; anything else never reaches a URL or an S3 key.
const gesId = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a GES id (letters, digits, dashes)');
const ArchiveBackupEvent = z.strictObject({ graphId: gesId, backupId: gesId });

/** Manual invocation: `{ "graphId": "…", "backupId": "…" }` → the backup's result. */
async function archiveBackup(event: unknown, _context: unknown, { signal, logger, metrics }: InvocationTools) {
  const { graphId, backupId } = parseEvent(ArchiveBackupEvent, event, { code: ErrorCodes.ArgsInvalid });
  const runtime = withCopyMetrics(await getRuntime({ logger }), metrics);
  const report = await archiveOneBackup(runtime, { graphId, backupId }, { signal });
  recordRunMetrics(metrics, report);
  return report;
}

export const handler = withLambdaStack(archiveBackup, { name: 'archiveBackup' });
