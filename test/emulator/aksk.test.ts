import { request } from 'undici';
import { signRequest } from '../../lib/ges/signer.js';
import { AkSkVerifier, LOCK_MS, type SignedRequestParts } from './aksk.js';
import { DEFAULT_ACCESS_KEY, startEmulator, type Emulator } from './index.js';

// The emulator's gateway check of AK/SK signatures: the Huawei Go SDK's own known answers are
// accepted, anything changed after signing is refused, and the clock and lock rules hold.

const SDK_KEY = { accessKey: 'AccessKey', secretKey: 'SecretKey' };
const SDK_TIME = Date.UTC(2006, 0, 2, 15, 4, 5);

/** The Go SDK's first known answer (core/auth/signer/signer_test.go): GET /path?limit=1. */
function sdkGet(overrides: Partial<SignedRequestParts> = {}): SignedRequestParts {
  return {
    method: 'GET', rawPath: '/path', rawQuery: 'limit=1', body: '',
    headers: {
      'x-sdk-date': '20060102T150405Z',
      authorization: 'SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624',
    },
    ...overrides,
  };
}

describe('the emulator\'s AK/SK check (gateway rules)', () => {
  it('accepts the Go SDK\'s known signatures and refuses them once anything signed has changed', () => {
    // Prepare
    const verifier = new AkSkVerifier([SDK_KEY], () => SDK_TIME);
    const post: SignedRequestParts = {
      method: 'POST', rawPath: '/path', rawQuery: 'key=value', body: '{"Name":"test","Id":1}\n',
      headers: {
        'x-sdk-date': '20060102T150405Z',
        authorization: 'SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59',
      },
    };
    // Act / Assess
    expect(verifier.verify(sdkGet())).toEqual({ ok: true, accessKey: 'AccessKey' });
    expect(verifier.verify(post)).toEqual({ ok: true, accessKey: 'AccessKey' });
    // A trailing slash is part of the canonical URI anyway; an unsigned header does not matter.
    expect(verifier.verify(sdkGet({ rawPath: '/path/', headers: { ...sdkGet().headers, 'user-agent': 'x' } })).ok).toBe(true);
    for (const changed of [
      sdkGet({ rawQuery: 'limit=2' }), sdkGet({ rawPath: '/other' }), sdkGet({ method: 'POST' }), sdkGet({ body: 'x' }),
      { ...post, body: '{"Name":"test","Id":2}\n' },
    ]) {
      expect(verifier.verify(changed)).toEqual({ ok: false, code: 'APIGW.0301', message: 'Incorrect IAM authentication information: verify aksk signature fail' });
    }
  });

  it('refuses a missing X-Sdk-Date, an unknown AK, a malformed header and more than 15 minutes of skew', () => {
    // Prepare
    let now = SDK_TIME + 14 * 60_000;
    const verifier = new AkSkVerifier([SDK_KEY], () => now);
    const auth = sdkGet().headers.authorization as string;
    // Act / Assess: 14 minutes late is within the limit
    expect(verifier.verify(sdkGet()).ok).toBe(true);
    now = SDK_TIME + 16 * 60_000;
    expect(verifier.verify(sdkGet())).toMatchObject({ ok: false, code: 'APIGW.0301', message: expect.stringContaining('signature expired') as unknown });
    now = SDK_TIME - 16 * 60_000;
    expect(verifier.verify(sdkGet())).toMatchObject({ ok: false, message: expect.stringContaining('signature expired') as unknown });
    now = SDK_TIME;
    expect(verifier.verify(sdkGet({ headers: { authorization: auth } }))).toMatchObject({ ok: false, message: expect.stringContaining('x-sdk-date') as unknown });
    expect(verifier.verify(sdkGet({ headers: { 'x-sdk-date': '20060102T150405Z', authorization: auth.replace('Access=AccessKey', 'Access=Nobody') } })))
      .toMatchObject({ ok: false, message: expect.stringContaining('access key does not exist') as unknown });
    expect(verifier.verify(sdkGet({ headers: { 'x-sdk-date': '20060102T150405Z', authorization: 'Bearer x' } }))).toMatchObject({ ok: false });
  });

  it('locks the AK for 5 minutes after 5 refused signatures in a row, even for a good one', () => {
    // Prepare
    let now = SDK_TIME;
    const verifier = new AkSkVerifier([SDK_KEY], () => now);
    const wrong = sdkGet({ rawQuery: 'limit=9' });
    // Act: 4 failures, a success (resets the count), then 5 failures
    for (let i = 0; i < 4; i++) verifier.verify(wrong);
    expect(verifier.verify(sdkGet()).ok).toBe(true);
    for (let i = 0; i < 5; i++) expect(verifier.verify(wrong).ok).toBe(false);
    // Assess
    expect(verifier.verify(sdkGet())).toMatchObject({ ok: false, message: expect.stringContaining('AK access failed to reach the limit') as unknown });
    now += LOCK_MS - 1000;
    expect(verifier.verify(sdkGet()).ok).toBe(false);
    now += 1000;
    // X-Sdk-Date is now 5 minutes old: still within the 15 minutes.
    expect(verifier.verify(sdkGet()).ok).toBe(true);
  });

  describe('over HTTP', () => {
    let emulator: Emulator | undefined;
    afterEach(async () => {
      await emulator?.close();
      emulator = undefined;
    });

    const G = 'g1';

    async function send(em: Emulator, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: unknown }> {
      const res = await request(`${em.gesEndpoint}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      return { status: res.statusCode, json: await res.body.json() };
    }

    it('serves signed list and import requests, and refuses a request changed after signing', async () => {
      // Prepare
      emulator = await startEmulator({ graphs: [{ id: G, backups: [{ id: 'b1', files: [{ name: 'f', bytes: 10 }] }] }] });
      const em = emulator;
      const listUrl = new URL(`${em.gesEndpoint}/v2/${em.projectId}/graphs/${G}/backups?offset=0&limit=10`);
      const importUrl = new URL(`${em.gesEndpoint}/v2/${em.projectId}/graphs/${G}/backups/import`);
      const importBody = JSON.stringify({ import_path: 'bucket/restored' });
      const list = signRequest({ method: 'GET', url: listUrl, headers: { accept: 'application/json' }, body: undefined }, DEFAULT_ACCESS_KEY, Date.now());
      const imp = signRequest({ method: 'POST', url: importUrl, headers: { 'content-type': 'application/json' }, body: importBody }, DEFAULT_ACCESS_KEY, Date.now());
      // Act
      const listed = await send(em, 'GET', `${listUrl.pathname}${listUrl.search}`, list);
      const imported = await send(em, 'POST', importUrl.pathname, imp, importBody);
      const reordered = await send(em, 'GET', `${listUrl.pathname}?limit=10&offset=0`, list);
      const tampered = await send(em, 'GET', `${listUrl.pathname}?offset=1&limit=10`, list);
      const otherBody = await send(em, 'POST', importUrl.pathname, imp, JSON.stringify({ import_path: 'bucket/other' }));
      // Assess: the query's order does not matter (it is sorted); its content does
      expect(listed.status).toBe(200);
      expect(imported).toMatchObject({ status: 200, json: { job_id: expect.any(String) as unknown } });
      expect(em.stats.imports).toEqual([expect.objectContaining({ importPath: 'bucket/restored' })]);
      expect(reordered.status).toBe(200);
      expect(tampered).toMatchObject({ status: 401, json: { error_code: 'APIGW.0301', error_msg: 'Incorrect IAM authentication information: verify aksk signature fail' } });
      expect(otherBody.status).toBe(401);
      expect(em.stats).toMatchObject({ signedRequests: 3, refusedSignatures: 2, tokenHeaderRequests: 0, tokenRequests: 0 });
    });

    it('wants a temporary AK/SK\'s security token, signed; and dates its answers with the gateway clock', async () => {
      // Prepare
      const temp = { accessKey: 'TEMPORARYAK000000001', secretKey: 'temporary-secret', securityToken: 'sts-token' };
      const skew = 16 * 60_000;
      emulator = await startEmulator({ graphs: [{ id: G, backups: [] }], accessKeys: [temp], gatewayClock: () => Date.now() + skew });
      const em = emulator;
      const url = new URL(`${em.gesEndpoint}/v2/${em.projectId}/graphs/${G}/backups`);
      const req = { method: 'GET', url, headers: {}, body: undefined };
      // Act
      const withToken = await send(em, 'GET', url.pathname, signRequest(req, temp, Date.now() + skew));
      const withoutToken = await send(em, 'GET', url.pathname, signRequest(req, { ...temp, securityToken: undefined }, Date.now() + skew));
      const late = await request(url, { headers: signRequest(req, temp, Date.now()) });
      // Assess
      expect(withToken.status).toBe(200);
      expect(withoutToken).toMatchObject({ status: 401, json: { error_msg: expect.stringContaining('X-Security-Token') as unknown } });
      expect(late.statusCode).toBe(401);
      expect(Date.parse(String(late.headers['date'])) - Date.now()).toBeGreaterThan(skew - 5000);
      await late.body.dump();
    });
  });
});
