import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ArchiveDeps } from '../archive/types.js';
import type { Config } from '../config.js';

/** What fan-out, the worker and finalize need: the orchestrator's deps plus the queue and the topic. */
export interface FanoutDeps extends ArchiveDeps {
  config: ArchiveDeps['config'] & Pick<Config, 'copyQueueUrl' | 'alertTopicArn'> & Partial<Pick<Config, 'fanout' | 'manifestUri' | 'partSizeBytes'>>;
  sqs?: SQSClient | undefined;
  sns?: SNSClient | undefined;
}
