// Presigned OBS links (docs/ges-api.md §7.1, §7.2) and their strict verification.
//
// Verification is stricter than "decode and compare": the raw query must be byte-for-byte
// what the emulator issued (same parameters, same order, canonical percent-encoding), so
// re-encoding `%2B` as `+` or `%2b`, or appending a parameter, gives SignatureDoesNotMatch,
// which is what a client that does not treat links as opaque would meet on real OBS.
import { createHash, createHmac } from 'node:crypto';
import type { LinkStyle } from './types.js';

interface SigningKey {
  accessKeyId: string;
  secret: string;
}

// A pool of keys, as temporary credentials rotate in real links. The pool also lets the
// emulator pick, for V2 links, a key whose base64 signature contains `+` and `/`, so that
// `%2B`, `%2F` and `%3D` all occur in issued links (docs/ges-api.md §9.14). About one key in
// eight gives such a signature for a given link, so 64 keys missed now and then (~1 link in
// 3,500, seen in CI); with 256 none is found about once in 10^14.
const KEY_POOL: readonly SigningKey[] = Array.from({ length: 256 }, (_, i) => {
  const h = createHash('sha256').update(`ges-emulator-key-${i}`).digest();
  return {
    accessKeyId: h.toString('hex').slice(0, 20).toUpperCase(),
    secret: h.toString('base64').slice(0, 40),
  };
});
const KEYS_BY_ID = new Map(KEY_POOL.map((k) => [k.accessKeyId, k]));

const PARAMS: Record<LinkStyle, readonly string[]> = {
  'obs-v2': ['AccessKeyId', 'Expires', 'Signature'],
  's3-v2': ['AWSAccessKeyId', 'Expires', 'Signature'],
  's3-v4': ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'],
};

/** RFC 3986 encoding, as S3/OBS canonicalise (encodeURIComponent leaves !'()* alone). */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Headers that take part in a V2 signature besides the verb and the resource. */
export interface SignedRequestHeaders {
  contentMd5?: string;
  contentType?: string;
  /** `x-obs-*` / `x-amz-*` request headers, lower-cased names. */
  extra?: Record<string, string>;
}

function v2Signature(secret: string, verb: string, expires: number, resource: string, prefix: string, h: SignedRequestHeaders): string {
  const canonicalHeaders = Object.entries(h.extra ?? {})
    .filter(([k]) => k.startsWith(prefix))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v.trim()}\n`)
    .join('');
  const stringToSign = `${verb}\n${h.contentMd5 ?? ''}\n${h.contentType ?? ''}\n${expires}\n${canonicalHeaders}${resource}`;
  return createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function v4Signature(secret: string, verb: string, path: string, canonicalQuery: string, host: string, amzDate: string, region: string): string {
  const date = amzDate.slice(0, 8);
  const canonicalRequest = [verb, path, canonicalQuery, `host:${host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/s3/aws4_request`, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
  return createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
}

function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function amzDateToMs(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export interface PresignInput {
  style: LinkStyle;
  /** host[:port] as it goes into the URL. */
  host: string;
  /** The URL path, already encoded: /bucket/key. */
  path: string;
  nowMs: number;
  ttlSeconds: number;
  region: string;
  /** Rotates through the key pool. */
  sequence: number;
  /** Lower bound for the expiry (epoch s), so a new link never shares the expiry of a revoked one. */
  minExpiresAt?: number;
}

export interface Presigned {
  url: string;
  /** Epoch seconds after which the link is refused. */
  expiresAt: number;
}

export function presign(input: PresignInput): Presigned {
  const { style, host, path, nowMs, ttlSeconds, region, sequence } = input;
  const expiresAt = Math.max(Math.ceil(nowMs / 1000) + ttlSeconds, input.minExpiresAt ?? 0);
  if (style === 's3-v4') {
    const key = KEY_POOL[sequence % KEY_POOL.length] as SigningKey;
    const amzDate = amzDateOf(Math.floor(nowMs / 1000) * 1000);
    const values = ['AWS4-HMAC-SHA256', `${key.accessKeyId}/${amzDate.slice(0, 8)}/${region}/s3/aws4_request`, amzDate, String(expiresAt - Math.floor(nowMs / 1000)), 'host'];
    const query = PARAMS['s3-v4'].slice(0, 5).map((k, i) => `${k}=${uriEncode(values[i] as string)}`).join('&');
    const signature = v4Signature(key.secret, 'GET', path, query, host, amzDate, region);
    return { url: `http://${host}${path}?${query}&X-Amz-Signature=${signature}`, expiresAt };
  }
  const prefix = style === 'obs-v2' ? 'x-obs-' : 'x-amz-';
  let chosen: { key: SigningKey; signature: string } | undefined;
  for (let i = 0; i < KEY_POOL.length; i++) {
    const key = KEY_POOL[(sequence + i) % KEY_POOL.length] as SigningKey;
    const signature = v2Signature(key.secret, 'GET', expiresAt, path, prefix, {});
    chosen ??= { key, signature };
    if (signature.includes('+') && signature.includes('/')) {
      chosen = { key, signature };
      break;
    }
  }
  const { key, signature } = chosen as { key: SigningKey; signature: string };
  const [akParam, expParam, sigParam] = PARAMS[style] as [string, string, string];
  const query = `${akParam}=${key.accessKeyId}&${expParam}=${expiresAt}&${sigParam}=${uriEncode(signature)}`;
  return { url: `http://${host}${path}?${query}`, expiresAt };
}

export type VerifyResult =
  | { ok: true; expiresAt: number }
  | { ok: false; status: number; code: string; message: string };

const denied = (code: string, message: string, status = 403): VerifyResult => ({ ok: false, status, code, message });

export interface VerifyInput {
  method: string;
  rawPath: string;
  rawQuery: string;
  host: string;
  region: string;
  headers: SignedRequestHeaders;
  hasAuthorizationHeader: boolean;
}

/** Checks the link's structure and signature. Expiry is left to the caller (it also handles revocation). */
export function verifyLink(input: VerifyInput): VerifyResult {
  const pairs = input.rawQuery === '' ? [] : input.rawQuery.split('&').map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? [p, ''] as const : [p.slice(0, eq), p.slice(eq + 1)] as const;
  });
  const keys = pairs.map(([k]) => k);
  const style = (Object.keys(PARAMS) as LinkStyle[]).find((s) => keys.includes(PARAMS[s][0] as string));
  if (style === undefined) {
    if (input.hasAuthorizationHeader) return denied('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    return denied('AccessDenied', 'Access Denied');
  }
  if (input.hasAuthorizationHeader) {
    return denied('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified', 400);
  }
  const mismatch = denied('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  const expected = PARAMS[style];
  if (keys.length !== expected.length || keys.some((k, i) => k !== expected[i])) return mismatch;
  const values: string[] = [];
  for (const [, raw] of pairs) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return mismatch;
    }
    if (uriEncode(decoded) !== raw) return mismatch; // re-encoded, lower-case escapes, '+' for '%2B', ...
    values.push(decoded);
  }
  if (style === 's3-v4') {
    const [algorithm, credential, amzDate, expires, signedHeaders, signature] = values as [string, string, string, string, string, string];
    const [ak, date, region, service, terminator] = credential.split('/');
    const key = KEYS_BY_ID.get(ak ?? '');
    if (!key) return denied('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const startMs = amzDateToMs(amzDate);
    const ttl = Number(expires);
    if (algorithm !== 'AWS4-HMAC-SHA256' || signedHeaders !== 'host' || startMs === undefined || !Number.isInteger(ttl) || ttl < 1 || ttl > 604800
      || date !== amzDate.slice(0, 8) || region !== input.region || service !== 's3' || terminator !== 'aws4_request') {
      return denied('AuthorizationQueryParametersError', 'Error parsing the X-Amz-Credential parameter', 400);
    }
    const query = input.rawQuery.slice(0, input.rawQuery.lastIndexOf('&X-Amz-Signature='));
    if (v4Signature(key.secret, input.method, input.rawPath, query, input.host, amzDate, input.region) !== signature) return mismatch;
    return { ok: true, expiresAt: startMs / 1000 + ttl };
  }
  const [ak, expires, signature] = values as [string, string, string];
  const key = KEYS_BY_ID.get(ak);
  if (!key) return denied('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const expiresAt = Number(expires);
  if (!/^\d{1,12}$/.test(expires)) return denied('AccessDenied', 'Invalid date (should be seconds since epoch)');
  const prefix = style === 'obs-v2' ? 'x-obs-' : 'x-amz-';
  if (v2Signature(key.secret, input.method, expiresAt, input.rawPath, prefix, input.headers) !== signature) return mismatch;
  return { ok: true, expiresAt };
}
