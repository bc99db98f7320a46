import { createHash, createHmac } from 'node:crypto';

/**
 * Huawei API Gateway request signing, `SDK-HMAC-SHA256` (docs/ges-api.md §2.3), as the official
 * SDKs do it (huaweicloud-sdk-go-v3 core/auth/signer). Hand-written on node:crypto: the only
 * maintained implementation on npm is inside @huaweicloud/huaweicloud-sdk-core, which brings
 * axios, lodash, log4js, moment and ramda and signs only its own request objects.
 */
export const SIGNING_ALGORITHM = 'SDK-HMAC-SHA256';
export const SDK_DATE_HEADER = 'x-sdk-date';
export const SECURITY_TOKEN_HEADER = 'x-security-token';

export interface AkSkCredentials {
  readonly accessKey: string;
  readonly secretKey: string;
  /** With a temporary AK/SK: sent, and signed, as X-Security-Token. */
  readonly securityToken?: string | undefined;
}

export interface SignableRequest {
  method: string;
  url: URL;
  /** Header names in any case; every one of them is signed. */
  headers: Readonly<Record<string, string>>;
  body: string | undefined;
}

/** RFC 3986 escaping, as the SDK's `escape`: only A-Z a-z 0-9 - _ . ~ stay as they are. */
export function escapeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Each path segment escaped, always ending with "/". */
export function canonicalUri(pathname: string): string {
  const path = pathname.split('/').map((seg) => escapeRfc3986(decodeSegment(seg))).join('/');
  return path.endsWith('/') ? path : `${path}/`;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Keys sorted, each key's values sorted, `k=v` escaped and joined with "&". */
export function canonicalQueryString(params: URLSearchParams): string {
  const byKey = new Map<string, string[]>();
  for (const [k, v] of params) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  return [...byKey.keys()].sort(byCodeUnit)
    .flatMap((k) => (byKey.get(k) ?? []).sort(byCodeUnit).map((v) => `${escapeRfc3986(k)}=${escapeRfc3986(v)}`))
    .join('&');
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

/** `YYYYMMDDTHHMMSSZ` in UTC. */
export function sdkDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * The Authorization value for a request whose headers are exactly `req.headers` (which must
 * hold X-Sdk-Date): every header is signed. Exposed for the known-answer tests.
 */
export function authorizationFor(req: SignableRequest, credentials: Pick<AkSkCredentials, 'accessKey' | 'secretKey'>): string {
  const headers = new Map(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const date = headers.get(SDK_DATE_HEADER);
  if (date === undefined) throw new Error('authorizationFor needs an X-Sdk-Date header');
  const signedHeaders = [...headers.keys()].sort(byCodeUnit);
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(req.url.pathname),
    canonicalQueryString(req.url.searchParams),
    signedHeaders.map((k) => `${k}:${headers.get(k) ?? ''}\n`).join(''),
    signedHeaders.join(';'),
    sha256Hex(req.body ?? ''),
  ].join('\n');
  const stringToSign = `${SIGNING_ALGORITHM}\n${date}\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac('sha256', credentials.secretKey).update(stringToSign, 'utf8').digest('hex');
  return `${SIGNING_ALGORITHM} Access=${credentials.accessKey}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
}

/**
 * The headers to send: the request's own plus Host, X-Sdk-Date (from `nowMs`), X-Security-Token
 * (temporary credentials) and Authorization. Host is sent explicitly so that the value signed
 * is the value sent.
 */
export function signRequest(req: SignableRequest, credentials: AkSkCredentials, nowMs: number): Record<string, string> {
  const headers: Record<string, string> = { ...req.headers, host: req.url.host, [SDK_DATE_HEADER]: sdkDate(nowMs) };
  if (credentials.securityToken !== undefined) headers[SECURITY_TOKEN_HEADER] = credentials.securityToken;
  return { ...headers, authorization: authorizationFor({ ...req, headers }, credentials) };
}
