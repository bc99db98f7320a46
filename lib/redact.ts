/**
 * What counts as a secret, and how it is removed: used by the logger (lib/log.ts) for every
 * line, and by everything that writes reports or JSON for people (run reports, --json). Kept
 * apart from the logger so that code which only formats output does not load pino.
 */
export const REDACTED = '[REDACTED]';

// `(^|[-_])sk$`: an AK/SK's secret key (HWC_SK, HUAWEICLOUD_SDK_SK), not words ending in "sk".
const SECRET_KEY = /pass(word|wd)?$|secret|token|authorization|credential|signature|cookie|session|^(x-)?auth|api[-_]?key|private[-_]?key|(^|[-_])sk$/i;
// A URL with a query string: keep scheme, host and path, drop the query (and fragment).
const URL_QUERY = /\b(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>]*/gi;
// Header-like "X-Auth-Token: abc" or "token=abc" fragments inside free text.
const INLINE_SECRET = /\b(x-auth-token|x-subject-token|x-security-token|authorization|password|token|signature|secret)(\s*[:=]\s*)("[^"]*"|[^\s,;&"]+)/gi;
// "HWC_SK=…" as in an environment dump; with "=" only, so that "HWC_SK: is required" stays readable.
const INLINE_ENV_SECRET = /\b((?:hwc|huaweicloud_sdk)_(?:sk|security_token))(\s*=\s*)("[^"]*"|[^\s,;&"]+)/gi;

export function redactString(text: string): string {
  return text.replace(URL_QUERY, `$1?${REDACTED}`).replace(INLINE_SECRET, `$1$2${REDACTED}`).replace(INLINE_ENV_SECRET, `$1$2${REDACTED}`);
}

function serializeError(err: Error, seen: WeakSet<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: redactString(err.message) };
  const extra = err as Error & { code?: unknown; retryable?: unknown; details?: unknown; statusCode?: unknown };
  if (extra.code !== undefined) out['code'] = extra.code;
  if (extra.retryable !== undefined) out['retryable'] = extra.retryable;
  if (extra.statusCode !== undefined) out['statusCode'] = extra.statusCode;
  if (extra.details !== undefined) out['details'] = redactValue(extra.details, seen, depth + 1);
  if (err.stack) out['stack'] = redactString(err.stack);
  if (err.cause !== undefined) out['cause'] = redactValue(err.cause, seen, depth + 1);
  return out;
}

/** Deep copy of `value` with secrets removed. Safe on cycles and deep structures. */
export function redactValue(value: unknown, seen: WeakSet<object> = new WeakSet(), depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[Truncated]';
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) return serializeError(value, seen, depth);
  if (value instanceof URL) return redactString(value.href);
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, seen, depth + 1));
  if (value instanceof Map) return redactValue(Object.fromEntries(value), seen, depth + 1);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'boolean' && typeof v !== 'number'
      ? REDACTED
      : redactValue(v, seen, depth + 1);
  }
  return out;
}

const JSON_STRING_FIELD = /"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"/g;

/** Redacts a serialised JSON log line: secret-named string fields, URL queries, inline secrets. */
export function redactJsonLine(line: string): string {
  return redactString(line.replace(JSON_STRING_FIELD, (whole, key: string) => (SECRET_KEY.test(key) ? `"${key}":"${REDACTED}"` : whole)));
}
