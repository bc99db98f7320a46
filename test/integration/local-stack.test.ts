// Smoke test of the local stack itself: Swift's s3api behaves like S3 for the calls the
// archiver relies on, and fauxqs delivers SQS messages and SNS → SQS fan-out.
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand,
  PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, PublishCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand,
  SendMessageCommand, type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, snsClient, sqsClient, uniqueName,
} from '../support/aws.js';

const MiB = 1024 * 1024;

describe('local S3 (Swift + s3api)', () => {
  let s3: S3Client;
  let bucket: string;

  beforeAll(async () => {
    s3 = s3Client();
    bucket = await createTestBucket('smoke');
  });

  afterAll(() => {
    s3.destroy();
  });

  test('PutObject stores the bytes it was given', async () => {
    // Prepare
    const body = randomBytes(64 * 1024);

    // Act
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small/object.bin', Body: body }));

    // Assess
    expect(await listKeys(bucket, 'small/')).toEqual(['small/object.bin']);
    expect((await getObjectBytes(bucket, 'small/object.bin')).equals(body)).toBe(true);
  });

  test('a completed multipart upload reads back byte for byte', async () => {
    // Prepare
    const key = 'multipart/object.bin';
    const parts = [randomBytes(5 * MiB), randomBytes(123_457)];
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));

    // Act
    const etags = await Promise.all(parts.map(async (part, index) => {
      const { ETag } = await s3.send(new UploadPartCommand({
        Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: part,
      }));
      return { ETag, PartNumber: index + 1 };
    }));
    const completed = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags },
    }));

    // Assess
    expect(completed.ETag).toMatch(/-2"?$/);
    expect((await getObjectBytes(bucket, key)).equals(Buffer.concat(parts))).toBe(true);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  test('an aborted multipart upload is no longer in progress', async () => {
    // Prepare
    const key = 'aborted/object.bin';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toContain(UploadId);

    // Act
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));

    // Assess
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, 'aborted/')).toEqual([]);
  });
});

describe('local SQS and SNS (fauxqs)', () => {
  let sqs: SQSClient;
  let sns: SNSClient;

  beforeAll(() => {
    sqs = sqsClient();
    sns = snsClient();
  });

  afterAll(() => {
    sqs.destroy();
    sns.destroy();
  });

  test('a sent message is received once and deleted', async () => {
    // Prepare
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('smoke-queue') }));

    // Act
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: '{"backup":"b-1"}' }));
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const message = received.Messages?.[0];
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message?.ReceiptHandle }));

    // Assess
    expect(received.Messages).toHaveLength(1);
    expect(message?.Body).toBe('{"backup":"b-1"}');
    const attributes = await sqs.send(new GetQueueAttributesCommand({
      QueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }));
    expect(attributes.Attributes).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });

  test('a message published to an SNS topic reaches its SQS subscriber', async () => {
    // Prepare
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('smoke-alerts') }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: uniqueName('smoke-topic') }));
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes?.QueueArn }));

    // Act
    await sns.send(new PublishCommand({ TopicArn, Subject: 'archive failed', Message: 'backup b-2 failed' }));
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5 }));

    // Assess
    expect(received.Messages).toHaveLength(1);
    const envelope = JSON.parse(received.Messages?.[0]?.Body ?? '{}') as Record<string, unknown>;
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn, Subject: 'archive failed', Message: 'backup b-2 failed' });
  });
});
