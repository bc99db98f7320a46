import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadConfig } from '../../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import { clearSecretCache, loadHuaweiSecret, resolveEnvironment } from '../../../functions/lib/secrets.js';

// A real local HTTP server speaking the Secrets Manager JSON protocol (GetSecretValue), so the
// real SDK client is exercised: serialisation, error mapping, the lot.
type Answer = { status: number; body: Record<string, unknown> };

let server: Server;
let endpoint: string;
let answer: Answer;
let requests: Array<{ target: string | undefined; body: Record<string, unknown> }>;
let delayMs = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ target: req.headers['x-amz-target'] as string | undefined, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> });
      setTimeout(() => {
        res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(answer.body));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  clearSecretCache();
  requests = [];
  delayMs = 0;
});

function client(): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

const secretOk = (value: Record<string, unknown>): Answer => ({ status: 200, body: { Name: 'ges/huawei', SecretString: JSON.stringify(value) } });

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
    expect(requests).toHaveLength(0);
  });

  it('fetches the secret once per container, concurrent callers sharing one request', async () => {
    answer = secretOk({ GES_AUTH_TOKEN: 'tok-123', GES_PROJECT_ID: 'p1' });
    delayMs = 50;
    const env = { HWC_SECRET_ID: 'ges/huawei' };

    const results = await Promise.all([loadHuaweiSecret(env, { client: client() }), loadHuaweiSecret(env, { client: client() })]);
    const later = await loadHuaweiSecret(env, { client: client() });

    expect(results[0]).toEqual({ GES_AUTH_TOKEN: 'tok-123', GES_PROJECT_ID: 'p1' });
    expect(results[1]).toBe(results[0]);
    expect(later).toBe(results[0]);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toEqual({ target: 'secretsmanager.GetSecretValue', body: { SecretId: 'ges/huawei' } });
  });

  it('names the missing or wrong fields, never the values', async () => {
    answer = secretOk({ HWC_USERNAME: 'alice', HWC_PASSWORD: 'pa55-w0rd', HWC_IAM_ENDPOINT: 'https://iam.example', HWC_DOMAIN: 42, EXTRA: 'x' });

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.message).toContain('ges/huawei');
    expect(err.message).toMatch(/HWC_DOMAIN/);
    expect(err.message).toMatch(/EXTRA/);
    expect(JSON.stringify({ message: err.message, details: err.details, cause: String(err.cause) })).not.toMatch(/pa55-w0rd|alice|iam\.example/);
  });

  it('asks for the complete IAM set when there is no token', async () => {
    answer = secretOk({ HWC_USERNAME: 'alice', HWC_PASSWORD: 'pa55-w0rd' });

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.message).toMatch(/HWC_IAM_ENDPOINT/);
    expect(err.message).toMatch(/HWC_DOMAIN/);
    expect(err.message).toMatch(/HWC_PROJECT/);
    expect(err.message).not.toContain('pa55-w0rd');
  });

  it('does not quote a secret that is not JSON', async () => {
    answer = { status: 200, body: { SecretString: 'tok-not-json-s3cret' } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.message).not.toContain('s3cret');
    expect(err.cause).toBeUndefined();
  });

  it('reports a missing secret as CONFIG_INVALID and tries again on the next call', async () => {
    answer = { status: 400, body: { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/missing' }, { client: client() }));
    expect(err.code).toBe(ErrorCodes.ConfigInvalid);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('ResourceNotFoundException');

    answer = secretOk({ GES_AUTH_TOKEN: 'tok-now-there' });
    await expect(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/missing' }, { client: client() })).resolves.toEqual({ GES_AUTH_TOKEN: 'tok-now-there' });
    expect(requests).toHaveLength(2);
  });

  it('reports throttling as a retryable INTERNAL failure', async () => {
    answer = { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' } };

    const err = await failure(loadHuaweiSecret({ HWC_SECRET_ID: 'ges/huawei' }, { client: client() }));

    expect(err.code).toBe(ErrorCodes.Internal);
    expect(err.retryable).toBe(true);
  });
});

describe('resolveEnvironment', () => {
  it('merges the secret over the environment so loadConfig sees IAM credentials', async () => {
    answer = secretOk({
      HWC_IAM_ENDPOINT: 'https://iam.cn-north-4.myhuaweicloud.com', HWC_USERNAME: 'alice', HWC_PASSWORD: 'pw',
      HWC_DOMAIN: 'acme', HWC_PROJECT: 'cn-north-4',
    });

    const env = await resolveEnvironment({
      HWC_SECRET_ID: 'ges/huawei', GES_ENDPOINT: 'https://ges.cn-north-4.myhuaweicloud.com', ARCHIVE_BUCKET: 'archive-bucket',
    }, { client: client() });
    const config = loadConfig(env);

    expect(config.ges.auth).toMatchObject({ mode: 'iam', username: 'alice', domain: 'acme', project: 'cn-north-4' });
  });
});
