import { authorizationFor, canonicalQueryString, canonicalUri, sdkDate, signRequest } from '../../../lib/ges/signer.js';

// Known answers from the Huawei Go SDK's own tests (huaweicloud-sdk-go-v3,
// core/auth/signer/signer_test.go): AK "AccessKey", SK "SecretKey", X-Sdk-Date
// 20060102T150405Z, only x-sdk-date signed.
const SDK_KEYS = { accessKey: 'AccessKey', secretKey: 'SecretKey' };
const SDK_DATE = '20060102T150405Z';

describe('SDK-HMAC-SHA256 signer', () => {
  it('reproduces the Go SDK signature of a GET with a query', () => {
    // Act
    const auth = authorizationFor({
      method: 'GET', url: new URL('https://example.huaweicloud.com/path?limit=1'), headers: { 'X-Sdk-Date': SDK_DATE }, body: undefined,
    }, SDK_KEYS);
    // Assess
    expect(auth).toBe('SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624');
  });

  it('reproduces the Go SDK signature of a POST with a JSON body', () => {
    // Act: the Go SDK's JSON encoder ends the body with a newline
    const auth = authorizationFor({
      method: 'POST', url: new URL('https://example.huaweicloud.com/path?key=value'), headers: { 'X-Sdk-Date': SDK_DATE }, body: '{"Name":"test","Id":1}\n',
    }, SDK_KEYS);
    // Assess
    expect(auth).toBe('SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59');
  });

  it('builds the Go SDK\'s canonical query string: sorted keys and values, RFC 3986 escapes', () => {
    // Prepare
    const params = new URLSearchParams();
    params.append('limit', '1');
    params.append('enable', 'true');
    params.append('test', '一 (&=?!#%.*)');
    params.append('path', '/tmp/123');
    for (const v of ['3', '1', '2']) params.append('multi', v);
    // Act / Assess
    expect(canonicalQueryString(params)).toBe('enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29');
  });

  it('escapes each path segment and always ends the canonical URI with a slash', () => {
    expect(canonicalUri('/v2/p1/graphs')).toBe('/v2/p1/graphs/');
    expect(canonicalUri('/v2/p1/graphs/')).toBe('/v2/p1/graphs/');
    expect(canonicalUri('/v2/a%20b/c*d')).toBe('/v2/a%20b/c%2Ad/');
    expect(canonicalUri('')).toBe('/');
  });

  it('adds Host, X-Sdk-Date and X-Security-Token to the request and signs them all', () => {
    // Prepare
    const at = Date.UTC(2026, 10, 30, 8, 5, 9, 750);
    const req = { method: 'GET', url: new URL('http://127.0.0.1:8080/v2/p/graphs?offset=0'), headers: { accept: 'application/json' }, body: undefined };
    // Act
    const headers = signRequest(req, { ...SDK_KEYS, securityToken: 'temp-token' }, at);
    // Assess
    expect(sdkDate(at)).toBe('20261130T080509Z');
    expect(headers).toMatchObject({ host: '127.0.0.1:8080', 'x-sdk-date': '20261130T080509Z', 'x-security-token': 'temp-token', accept: 'application/json' });
    expect(headers['authorization']).toMatch(/^SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=accept;host;x-sdk-date;x-security-token, Signature=[0-9a-f]{64}$/);
    const { authorization, ...signed } = headers;
    expect(authorization).toBe(authorizationFor({ ...req, headers: signed }, SDK_KEYS));
    // Another secret key gives another signature.
    expect(signRequest(req, { ...SDK_KEYS, secretKey: 'Other' }, at)['authorization']).not.toBe(authorization);
  });
});
