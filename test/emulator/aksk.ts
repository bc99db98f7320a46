// The API gateway's check of AK/SK-signed requests (SDK-HMAC-SHA256, docs/ges-api.md §2.3).
//
// Written apart from lib/ges/signer.ts on purpose: the canonical request is rebuilt from what
// arrived on the wire (the raw path and query, the headers SignedHeaders lists, the body), so a
// client that signs one thing and sends another is refused, as by the real gateway.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { uriEncode } from './signing.js';
import type { EmulatorAccessKey } from './types.js';

/** The gateway's limits (docs/ges-api.md §2.3): clock skew, and the lock after failed signatures. */
export const MAX_SKEW_MS = 15 * 60_000;
export const LOCK_AFTER_FAILURES = 5;
export const LOCK_MS = 5 * 60_000;

export type AkSkVerdict =
  | { ok: true; accessKey: string }
  | { ok: false; code: 'APIGW.0301'; message: string };

export interface SignedRequestParts {
  method: string;
  /** The path exactly as received, still percent-encoded. */
  rawPath: string;
  /** The query exactly as received, without "?". */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const AUTHORIZATION = /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/;
const SDK_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const ascending = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function canonicalQuery(rawQuery: string): string {
  const pairs = [...new URLSearchParams(rawQuery)];
  pairs.sort(([ka, va], [kb, vb]) => ascending(ka, kb) || ascending(va, vb));
  return pairs.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** The canonical request for `parts` over the headers `signed` names, in its order. */
export function gatewayCanonicalRequest(parts: SignedRequestParts, signed: readonly string[]): string {
  let uri = parts.rawPath.split('/').map((seg) => uriEncode(decode(seg))).join('/');
  if (!uri.endsWith('/')) uri += '/';
  const canonicalHeaders = signed.map((h) => `${h}:${(headerValue(parts.headers, h.toLowerCase()) ?? '').trim()}\n`).join('');
  const bodyHash = headerValue(parts.headers, 'x-sdk-content-sha256') ?? sha256(parts.body);
  return [parts.method.toUpperCase(), uri, canonicalQuery(parts.rawQuery), canonicalHeaders, signed.join(';'), bodyHash].join('\n');
}

export class AkSkVerifier {
  private readonly keys: Map<string, EmulatorAccessKey>;
  private readonly failures = new Map<string, { count: number; lockedUntil: number }>();

  constructor(keys: readonly EmulatorAccessKey[], private readonly clock: () => number) {
    this.keys = new Map(keys.map((k) => [k.accessKey, k]));
  }

  verify(parts: SignedRequestParts): AkSkVerdict {
    const refuse = (why: string): AkSkVerdict => ({ ok: false, code: 'APIGW.0301', message: `Incorrect IAM authentication information: ${why}` });
    const m = AUTHORIZATION.exec(headerValue(parts.headers, 'authorization') ?? '');
    if (!m) return refuse('the Authorization header is not SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…');
    const [, accessKey = '', signedList = '', signature = ''] = m;
    const key = this.keys.get(accessKey);
    if (key === undefined) return refuse('the access key does not exist');
    const state = this.failures.get(accessKey) ?? { count: 0, lockedUntil: 0 };
    this.failures.set(accessKey, state);
    const now = this.clock();
    if (now < state.lockedUntil) return refuse('AK access failed to reach the limit,forbidden.');

    const fail = (why: string): AkSkVerdict => {
      state.count++;
      if (state.count >= LOCK_AFTER_FAILURES) {
        state.count = 0;
        state.lockedUntil = now + LOCK_MS;
      }
      return refuse(why);
    };
    // Taken as listed: the list itself is part of what was signed.
    const signed = signedList.split(';');
    if (!signed.includes('x-sdk-date')) return fail('x-sdk-date is not among the signed headers');
    const missing = signed.find((h) => headerValue(parts.headers, h.toLowerCase()) === undefined);
    if (missing !== undefined) return fail(`the signed header ${missing} is not in the request`);
    const date = SDK_DATE.exec(headerValue(parts.headers, 'x-sdk-date') ?? '');
    if (!date) return fail('X-Sdk-Date is not YYYYMMDDTHHMMSSZ');
    const signedAt = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]), Number(date[4]), Number(date[5]), Number(date[6]));
    if (Math.abs(now - signedAt) > MAX_SKEW_MS) return fail('signature expired (X-Sdk-Date is more than 15 minutes off)');
    if (key.securityToken !== undefined && (!signed.includes('x-security-token') || headerValue(parts.headers, 'x-security-token') !== key.securityToken)) {
      return fail('a temporary access key needs its X-Security-Token, signed');
    }

    const stringToSign = `SDK-HMAC-SHA256\n${date[0]}\n${sha256(gatewayCanonicalRequest(parts, signed))}`;
    const expected = createHmac('sha256', key.secretKey).update(stringToSign, 'utf8').digest();
    const given = Buffer.from(signature, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('verify aksk signature fail');
    state.count = 0;
    return { ok: true, accessKey };
  }
}
