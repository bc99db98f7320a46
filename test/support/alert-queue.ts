// An SNS topic with an SQS queue subscribed (fauxqs), to read the alerts a function publishes.
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { uniqueName } from './aws.js';

export interface ReceivedAlert {
  subject: string;
  body: { runId: string; source: string; summary: string; failures: Array<{ graphId: string; backupId: string; file?: string; code: string; message: string }> };
}

/** A fresh SQS queue (fauxqs) with a unique name, and its ARN. */
export async function createQueue(sqs: SQSClient, name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName(name) }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}

export async function alertQueue(sqs: SQSClient, sns: SNSClient, name: string): Promise<{ topicArn: string; queueUrl: string }> {
  const queue = await createQueue(sqs, `${name}-alerts`);
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: uniqueName(`${name}-topic`) }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: queue.arn }));
  return { topicArn: TopicArn!, queueUrl: queue.url };
}

/** The alerts waiting in the queue (SNS envelope unwrapped), after at most `waitSeconds`. */
export async function alertsOn(sqs: SQSClient, queueUrl: string, waitSeconds: number): Promise<ReceivedAlert[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }));
  return (res.Messages ?? []).map((m) => {
    const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
    return { subject: envelope.Subject, body: JSON.parse(envelope.Message) as ReceivedAlert['body'] };
  });
}
