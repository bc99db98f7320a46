// A warm Lambda container and its Huawei credentials secret (HWC_SECRET_ID): the archiveBackup
// handler, its container-cached runtime, a local Secrets Manager, the GES + IAM emulator and
// Swift. A wrong password costs one IAM login, however many invocations; a rotated password is
// used by the next invocation, without waiting for AWS to recycle the container.
import type { Context } from 'aws-lambda';
import { clearSecretCache } from '../../functions/lib/secrets.js';
import { resetRuntime } from '../../functions/lib/runtime.js';
import { DEFAULT_ACCESS_KEY, DEFAULT_USER, startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listKeys, s3Endpoint } from '../support/aws.js';
import { secretOk, startSecretsManagerStub, type SecretsManagerStub } from '../support/secrets-manager.js';

const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '0f1e2d3c-4b5a-4697-8877-665544332211';

interface Report { backups: { backupId: string; status: string; error?: { code: string } }[] }

function context(): Context {
  const end = Date.now() + 60_000;
  return { functionName: 'test-fn', awsRequestId: `req-${Math.random().toString(36).slice(2)}`, getRemainingTimeInMillis: () => end - Date.now() } as unknown as Context;
}

describe('Lambda credentials from Secrets Manager in a warm container', () => {
  let emulator: Emulator;
  let secrets: SecretsManagerStub;
  let bucket: string;
  const saved = { ...process.env };

  const credentials = (password: string): Record<string, string> => ({
    HWC_IAM_ENDPOINT: emulator.iamEndpoint, HWC_USERNAME: DEFAULT_USER.name, HWC_PASSWORD: password,
    HWC_DOMAIN: DEFAULT_USER.domain, HWC_PROJECT: emulator.projectName,
  });

  beforeAll(async () => {
    emulator = await startEmulator({ graphs: [{ id: G, backups: [{ id: B, files: [{ name: 'graph.bin', bytes: 4096 }] }] }] });
    secrets = await startSecretsManagerStub();
    bucket = await createTestBucket('lambda-secret');
    Object.assign(process.env, {
      HWC_SECRET_ID: 'ges/huawei',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      GES_ENDPOINT: emulator.gesEndpoint,
      ARCHIVE_BUCKET: bucket,
      DOWNLOAD_ALLOWED_HOSTS: '127.0.0.1',
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ENDPOINT_URL_S3: s3Endpoint(),
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    });
    for (const name of ['GES_AUTH_TOKEN', 'GES_PROJECT_ID', 'COPY_QUEUE_URL', 'ALERT_TOPIC_ARN', 'MANIFEST_URI']) delete process.env[name];
    clearSecretCache();
    resetRuntime();
  });

  afterAll(async () => {
    resetRuntime();
    clearSecretCache();
    process.env = saved;
    await secrets.close();
    await emulator.close();
  });

  it('asks IAM once for a wrong password across invocations, and uses the rotated password at the next invocation', async () => {
    // Prepare
    const { handler } = await import('../../functions/archive-backup.js');
    secrets.answer = secretOk(credentials('a-typo'));

    // Act: two invocations with the wrong password in the secret
    const first = await handler({ graphId: G, backupId: B }, context()) as unknown as Report;
    const second = await handler({ graphId: G, backupId: B }, context()) as unknown as Report;

    // Assess: one login attempt in all; the secret was read again after the first refusal
    expect(first.backups[0]).toMatchObject({ status: 'failed', error: { code: 'GES_AUTH_FAILED' } });
    expect(second.backups[0]).toMatchObject({ status: 'failed', error: { code: 'GES_AUTH_FAILED' } });
    expect(emulator.stats.tokenRequests).toBe(1);
    expect(emulator.stats.failedLogins).toBe(1);
    expect(secrets.requests).toHaveLength(2);

    // Act: the password is rotated in the secret
    secrets.answer = secretOk(credentials(DEFAULT_USER.password));
    const third = await handler({ graphId: G, backupId: B }, context()) as unknown as Report;

    // Assess
    expect(third.backups[0]).toMatchObject({ backupId: B, status: 'archived' });
    expect(emulator.stats.tokenRequests).toBe(2);
    expect(await listKeys(bucket, `ges-backups/${G}/${B}/`)).toEqual([`ges-backups/${G}/${B}/SHA256SUMS`, `ges-backups/${G}/${B}/graph.bin`, `ges-backups/${G}/${B}/manifest.json`]);
  });

  it('signs with an AK/SK from the secret: one refused signature for a wrong SK across invocations, then the rotated SK archives', async () => {
    // Prepare: a fresh container, a backup not archived yet
    const { handler } = await import('../../functions/archive-backup.js');
    resetRuntime();
    clearSecretCache();
    const backup = '0f1e2d3c-4b5a-4697-8877-000000000a5c';
    emulator.addBackup(G, { id: backup, files: [{ name: 'graph.bin', bytes: 2048 }] });
    const aksk = (sk: string): Record<string, string> => ({ HWC_AK: DEFAULT_ACCESS_KEY.accessKey, HWC_SK: sk, GES_PROJECT_ID: emulator.projectId });
    emulator.resetStats();
    secrets.answer = secretOk(aksk('a-wrong-secret-key'));

    // Act: two invocations with the wrong SK in the secret
    const first = await handler({ graphId: G, backupId: backup }, context()) as unknown as Report;
    const second = await handler({ graphId: G, backupId: backup }, context()) as unknown as Report;
    secrets.answer = secretOk(aksk(DEFAULT_ACCESS_KEY.secretKey));
    const third = await handler({ graphId: G, backupId: backup }, context()) as unknown as Report;

    // Assess
    expect(first.backups[0]).toMatchObject({ status: 'failed', error: { code: 'GES_AUTH_FAILED' } });
    expect(second.backups[0]).toMatchObject({ status: 'failed', error: { code: 'GES_AUTH_FAILED' } });
    expect(third.backups[0]).toMatchObject({ backupId: backup, status: 'archived' });
    expect(emulator.stats.refusedSignatures).toBe(1);
    expect(emulator.stats.signedRequests).toBeGreaterThan(0);
    expect(emulator.stats).toMatchObject({ tokenRequests: 0, tokenHeaderRequests: 0 });
  });
});
