// A real local HTTP server speaking the Secrets Manager JSON protocol (GetSecretValue), so the
// real SDK client is exercised: serialisation, error mapping, the lot. The test sets `answer`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SecretsManagerAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface SecretsManagerStub {
  endpoint: string;
  /** What the next requests get. */
  answer: SecretsManagerAnswer;
  /** Wait this long before answering. */
  delayMs: number;
  requests: Array<{ target: string | undefined; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** A GetSecretValue answer holding `value` as its SecretString. */
export const secretOk = (value: Record<string, unknown>): SecretsManagerAnswer => ({
  status: 200,
  body: { Name: 'ges/huawei', SecretString: JSON.stringify(value) },
});

export async function startSecretsManagerStub(): Promise<SecretsManagerStub> {
  const stub: SecretsManagerStub = {
    endpoint: '',
    answer: { status: 500, body: { __type: 'InternalServiceError', message: 'no answer set' } },
    delayMs: 0,
    requests: [],
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stub.requests.push({
        target: req.headers['x-amz-target'] as string | undefined,
        body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
      });
      const { status, body } = stub.answer;
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      }, stub.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}
