import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';
import { createRuntime as createCoreRuntime, createSnsClient, createSqsClient, type Runtime as CoreRuntime } from '../../lib/app/runtime.js';
import { rootLogger } from './logger.js';
import { forgetHuaweiSecret, loadHuaweiSecret } from './secrets.js';

/**
 * The Lambda composition root. The core runtime (lib/app/runtime.ts: config, S3 client, undici
 * dispatcher, GES client, copier, retry policy, logger) plus what only Lambda uses: the SQS
 * client for fan-out and the SNS client for alerts. Built once per container and credentials
 * secret, after the Huawei credentials secret (HWC_SECRET_ID) is merged over the environment.
 */
export interface Runtime extends CoreRuntime {
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
}

/**
 * Builds a Runtime from the environment with the credentials secret merged over it. Throws
 * ArchiverError CONFIG_INVALID naming the bad variable.
 */
function buildRuntime(env: Record<string, string | undefined>, secret: Readonly<Record<string, string>>): Runtime {
  const config = loadConfig({ ...env, ...secret });
  // Refused credentials may have been rotated: read the secret again on the next invocation.
  const core = createCoreRuntime(config, rootLogger, { onGesAuthFailure: () => forgetHuaweiSecret(env) });
  // Region, credentials and AWS_ENDPOINT_URL_SQS / _SNS come from the SDK's standard environment;
  // the core's factories keep lib/retry.ts the only retry policy (SDK maxAttempts 1).
  return { ...core, sqs: core.sqs ?? createSqsClient(), sns: core.sns ?? createSnsClient() };
}

/** Same keys and values: the secret did not change (a fresh read of it is a new object). */
function sameSecret(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

let cached: { runtime: Runtime; secret: Readonly<Record<string, string>> } | undefined;

/**
 * The container's Runtime, built on first use and reused by later invocations, so TCP/TLS
 * connections and the IAM token survive between them. Concurrent first calls share one build
 * (nothing is awaited between the secret read and the build); a build that fails (invalid
 * configuration) is not kept, so the next invocation tries again.
 *
 * The Huawei credentials secret is read again after its TTL and after GES or IAM refused the
 * credentials (functions/lib/secrets.ts); when its content changed, the Runtime is rebuilt with
 * it, so a rotated password is used at once. An unchanged secret keeps the Runtime, and with it
 * the GES client's memory of a refused password: IAM is not asked again with it (lockout).
 *
 * `logger` replaces `runtime.logger` in the returned view so the orchestrator logs with the
 * invocation's request id. (The GES client and copier keep the child loggers they were built
 * with: rebuilding them per invocation would re-authenticate with IAM every time.)
 */
export async function getRuntime(options: { logger?: Logger } = {}): Promise<Runtime> {
  const secret = await loadHuaweiSecret(process.env);
  if (cached === undefined || !sameSecret(cached.secret, secret)) {
    const runtime = buildRuntime(process.env, secret);
    const previous = cached;
    cached = { runtime, secret };
    // Lambda runs one invocation per container at a time: nobody is using the old one.
    if (previous !== undefined) void previous.runtime.close().catch(() => undefined);
  }
  const { runtime } = cached;
  return options.logger === undefined ? runtime : { ...runtime, logger: options.logger };
}

/** Drops the cached Runtime (tests). */
export function resetRuntime(): void {
  cached = undefined;
}
