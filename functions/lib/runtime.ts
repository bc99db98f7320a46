import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadConfig } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';
import { createRuntime as createCoreRuntime, createSnsClient, createSqsClient, type Runtime as CoreRuntime, type RuntimeOverrides } from '../../lib/runtime.js';
import { rootLogger } from './logger.js';
import { resolveEnvironment } from './secrets.js';

/**
 * The Lambda composition root. The core runtime (lib/runtime.ts: config, S3 client, undici
 * dispatcher, GES client, copier, retry policy, logger) plus what only Lambda uses: the SQS
 * client for fan-out and the SNS client for alerts. Built once per container, after the
 * Huawei credentials secret (HWC_SECRET_ID) is merged over the environment.
 */
export interface Runtime extends CoreRuntime {
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
}

export interface RuntimeOptions {
  /** Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Default: the container's root logger. */
  logger?: Logger;
  /** Default: created by secrets.ts for the Lambda's region. */
  secretsClient?: SecretsManagerClient;
  /** Passed to lib/runtime.ts (tests hand in local servers' clients). */
  overrides?: RuntimeOverrides;
  sqs?: SQSClient;
  sns?: SNSClient;
}

/** Builds a Runtime (no caching). Throws ArchiverError CONFIG_INVALID naming the bad variable or secret field. */
export async function buildRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const env = await resolveEnvironment(options.env ?? process.env, options.secretsClient ? { client: options.secretsClient } : {});
  const config = loadConfig(env);
  const core = createCoreRuntime(config, options.logger ?? rootLogger, options.overrides);
  // Region, credentials and AWS_ENDPOINT_URL_SQS / _SNS come from the SDK's standard environment;
  // the core's factories keep lib/retry.ts the only retry policy (SDK maxAttempts 1).
  return { ...core, sqs: options.sqs ?? core.sqs ?? createSqsClient(), sns: options.sns ?? core.sns ?? createSnsClient() };
}

let cached: Promise<Runtime> | undefined;

/**
 * The container's Runtime, built on first use and reused by later invocations, so TCP/TLS
 * connections and the IAM token survive between them. Single-flight: concurrent first calls
 * share one build; a failed build is forgotten and retried by the next invocation.
 *
 * `logger` replaces `runtime.logger` in the returned view so the orchestrator logs with the
 * invocation's request id. (The GES client and copier keep the child loggers they were built
 * with: rebuilding them per invocation would re-authenticate with IAM every time.)
 */
export async function getRuntime(options: { logger?: Logger } = {}): Promise<Runtime> {
  if (cached === undefined) {
    const building = buildRuntime();
    cached = building;
    building.catch(() => {
      if (cached === building) cached = undefined;
    });
  }
  const runtime = await cached;
  return options.logger === undefined ? runtime : { ...runtime, logger: options.logger };
}

/** Drops the cached Runtime (tests). */
export function resetRuntime(): void {
  cached = undefined;
}
