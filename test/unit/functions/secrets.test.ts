import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadConfig } from '../../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import { clearSecretCache, forgetHuaweiSecret, loadHuaweiSecret, SECRET_CACHE_TTL_MS } from '../../../functions/lib/secrets.js';
import { secretOk, startSecretsManagerStub, type SecretsManagerStub } from '../../support/secrets-manager.js';

let stub: SecretsManagerStub;

beforeAll(async () => {
  stub = await startSecretsManagerStub();
});

afterAll(async () => {
  await stub.close();
});

beforeEach(() => {
  clearSecretCache();
  stub.requests = [];
  stub.delayMs = 0;
});

function client(): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: stub.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

async function failure(promise: Promise<unknown>): Promise<ArchiverError> {
  try {
    await promise;
  } catch (e) {
    return e as ArchiverError;
  }
  throw new Error('expected a failure');
}

describe('loadHuaweiSecret', () => {
  it('returns nothing and asks nobody when HWC_SECRET_ID is unset (local runs use plain variables)', async () => {
    await expect(loadHuaweiSecret({ GES_AUTH_TOKEN: 'plain' }, { client: client() })).resolves.toEqual({});
    expect(stub.requests).toHaveLength(0);
  });

  it('fetches the secret once per TTL, concurrent callers sharing one request', async () => {
    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-123', GES_PROJECT_ID: 'p1' });
    stub.delayMs = 50;
    const env = { HWC_SECRET_ID: 'ges/huawei' };
    const now = () => 1_000;

    const results = await Promise.all([loadHuaweiSecret(env, { client: client(), now }), loadHuaweiSecret(env, { client: client(), now })]);
    const later = await loadHuaweiSecret(env, { client: client(), now });

    expect(results[0]).toEqual({ GES_AUTH_TOKEN: 'tok-123', GES_PROJECT_ID: 'p1' });
    expect(results[1]).toBe(results[0]);
    expect(later).toBe(results[0]);
    expect(stub.requests).toHaveLength(1);
    expect(stub.requests[0]).toEqual({ target: 'secretsmanager.GetSecretValue', body: { SecretId: 'ges/huawei' } });
  });

  it('reads the secret again once its TTL is over, so a rotated password is picked up in a warm container', async () => {
    // Prepare
    const env = { HWC_SECRET_ID: 'ges/huawei' };
    let clock = 1_000;
    const now = () => clock;
    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-before' });
    await loadHuaweiSecret(env, { client: client(), now });
    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-rotated' });

    // Act
    clock += SECRET_CACHE_TTL_MS - 1;
    const within = await loadHuaweiSecret(env, { client: client(), now });
    clock += 1;
    const after = await loadHuaweiSecret(env, { client: client(), now });

    // Assess
    expect(SECRET_CACHE_TTL_MS).toBe(5 * 60_000);
    expect(within).toEqual({ GES_AUTH_TOKEN: 'tok-before' });
    expect(after).toEqual({ GES_AUTH_TOKEN: 'tok-rotated' });
    expect(stub.requests).toHaveLength(2);
  });

  it('reads the secret again at once after forgetHuaweiSecret (an auth failure)', async () => {
    // Prepare
    const env = { HWC_SECRET_ID: 'ges/huawei' };
    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-before' });
    await loadHuaweiSecret(env, { client: client() });
    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-rotated' });

    // Act
    forgetHuaweiSecret(env);
    const after = await loadHuaweiSecret(env, { client: client() });

    // Assess
    expect(after).toEqual({ GES_AUTH_TOKEN: 'tok-rotated' });
    expect(stub.requests).toHaveLength(2);
  });

  it('names the missing or wrong fields, never the values', async () => {
    stub.answer = secretOk({ HWC_USERNAME: 'alice', HWC_PASSWORD: 'pa55-w0rd', HWC_IAM_ENDPOINT: 'https://iam.example', HWC_DOMAIN: 42, EXTRA: 'x' });

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.message).toContain('ges/huawei');
    expect(err.message).toMatch(/HWC_DOMAIN/);
    expect(err.message).toMatch(/EXTRA/);
    expect(JSON.stringify({ message: err.message, details: err.details, cause: String(err.cause) })).not.toMatch(/pa55-w0rd|alice|iam\.example/);
  });

  it('asks for the complete IAM set when there is no token', async () => {
    stub.answer = secretOk({ HWC_USERNAME: 'alice', HWC_PASSWORD: 'pa55-w0rd' });

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.message).toMatch(/HWC_IAM_ENDPOINT/);
    expect(err.message).toMatch(/HWC_DOMAIN/);
    expect(err.message).toMatch(/HWC_PROJECT/);
    expect(err.message).not.toContain('pa55-w0rd');
  });

  it('holds an AK/SK as its third shape; half an AK/SK, or an AK/SK beside a password, is refused by name', async () => {
    // Prepare
    const env = { HWC_SECRET_ID: 'ges/huawei' };
    stub.answer = secretOk({ HWC_AK: 'AKEXAMPLE00000000001', HWC_SK: 'sk-s3cret', HWC_SECURITY_TOKEN: 'sts-s3cret', GES_PROJECT_ID: 'abc123' });
    // Act
    const ok = await loadHuaweiSecret(env, { client: client() });
    clearSecretCache();
    stub.answer = secretOk({ HWC_AK: 'AKEXAMPLE00000000001', HWC_SECURITY_TOKEN: 'sts-s3cret' });
    const half = await failure(loadHuaweiSecret(env, { client: client() }));
    stub.answer = secretOk({ HWC_AK: 'AKEXAMPLE00000000001', HWC_SK: 'sk-s3cret', HWC_USERNAME: 'alice', HWC_PASSWORD: 'pa55-w0rd' });
    const mixed = await failure(loadHuaweiSecret(env, { client: client() }));
    // Assess
    expect(ok).toEqual({ HWC_AK: 'AKEXAMPLE00000000001', HWC_SK: 'sk-s3cret', HWC_SECURITY_TOKEN: 'sts-s3cret', GES_PROJECT_ID: 'abc123' });
    expect(half.message).toMatch(/HWC_SK: is required/);
    expect(half.message).not.toMatch(/HWC_IAM_ENDPOINT/);
    expect(mixed.message).toMatch(/HWC_USERNAME, HWC_PASSWORD \(IAM password\) and HWC_AK, HWC_SK \(AK\/SK\): credentials of more than one kind/);
    for (const err of [half, mixed]) {
      expect(err.code).toBe(ErrorCodes.ConfigInvalid);
      expect(JSON.stringify({ message: err.message, details: err.details })).not.toMatch(/s3cret|pa55-w0rd|alice/);
    }
  });

  it('does not quote a secret that is not JSON', async () => {
    stub.answer = { status: 200, body: { SecretString: 'tok-not-json-s3cret' } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.message).not.toContain('s3cret');
    expect(err.cause).toBeUndefined();
  });

  it('reports a missing secret as CONFIG_INVALID and tries again on the next call', async () => {
    stub.answer = { status: 400, body: { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/missing' }, { client: client() }));
    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('ResourceNotFoundException');

    stub.answer = secretOk({ GES_AUTH_TOKEN: 'tok-now-there' });
    await expect(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/missing' }, { client: client() })).resolves.toEqual({ GES_AUTH_TOKEN: 'tok-now-there' });
    expect(stub.requests).toHaveLength(2);
  });

  it('reports throttling as a retryable INTERNAL failure', async () => {
    stub.answer = { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.Internal);
    expect(err.retryable).toBe(true);
  });
});

describe('the secret merged over the environment', () => {
  it('gives loadConfig the IAM credentials', async () => {
    stub.answer = secretOk({
      HWC_IAM_ENDPOINT: 'https://iam.cn-north-4.myhuaweicloud.com', HWC_USERNAME: 'alice', HWC_PASSWORD: 'pw',
      HWC_DOMAIN: 'acme', HWC_PROJECT: 'cn-north-4',
    });
    const env = { HWC_SECRET_ID: 'ges/huawei', GES_ENDPOINT: 'https://ges.cn-north-4.myhuaweicloud.com', ARCHIVE_BUCKET: 'archive-bucket' };

    const config = loadConfig({ ...env, ...await loadHuaweiSecret(env, { client: client() }) });

    expect(config.ges.auth).toMatchObject({ mode: 'iam', username: 'alice', domain: 'acme', project: 'cn-north-4' });
  });

  it('gives loadConfig the AK/SK, with the project id from the environment', async () => {
    stub.answer = secretOk({ HWC_AK: 'AKEXAMPLE00000000001', HWC_SK: 'sk' });
    const env = { HWC_SECRET_ID: 'ges/huawei', GES_ENDPOINT: 'https://ges.cn-north-4.myhuaweicloud.com', ARCHIVE_BUCKET: 'archive-bucket', GES_PROJECT_ID: 'abc123' };

    const config = loadConfig({ ...env, ...await loadHuaweiSecret(env, { client: client() }) });

    expect(config.ges.auth).toEqual({ mode: 'aksk', accessKey: 'AKEXAMPLE00000000001', secretKey: 'sk', securityToken: undefined });
    expect(config.ges.projectId).toBe('abc123');
  });
});
