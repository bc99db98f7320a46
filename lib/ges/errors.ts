import { ArchiverError, ErrorCodes, type ErrorCode } from '../errors.js';
import { redactString } from '../log.js';
import { headerValue, isRetryableNetworkCode, isRetryableStatus, networkCodeOf, parseRetryAfter, STATUS_TABLES, type ResponseHeaders } from '../should-retry.js';

/**
 * Which GES / IAM / gateway failures retry, and under which stable code (house style §3:
 * retry decisions live in one place). lib/retry.ts then decides *how* to retry.
 *
 * - 429 and APIGW.0308: GES_THROTTLED, retryable, Retry-After honoured.
 * - 5xx, GES.7005 (even on 408), GES.7006 (400 or 500), GES.7051 ("network flap, retry",
 *   docs/ges-api.md §5.1), APIGW.06xx gateway internals: GES_UNAVAILABLE, retryable.
 * - 401: GES_AUTH_FAILED (the client renews an IAM token once first, see `tokenRejected`).
 * - GES.7000, GES.0016: GRAPH_NOT_FOUND. GES.7024: BACKUP_NOT_FOUND.
 * - Any other 4xx: GES_REQUEST_REJECTED, not retryable.
 * The remote code decides before the HTTP status does (docs/ges-api.md §9.8). Network codes,
 * Retry-After and the status table: lib/should-retry.ts.
 */

export interface RemoteError {
  /** As GES sent it, e.g. `APIG.0301`, `GES.7024`, or a Keystone number as text (`401`). */
  code: string | undefined;
  message: string | undefined;
  /** `request_id` from a gateway body, when there is one. */
  requestId: string | undefined;
}

const MAX_MESSAGE_CHARS = 300;

function text(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return undefined;
  const t = value.trim();
  return t === '' ? undefined : t;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['error_code', 'error_msg'],
  ['errorCode', 'errorMessage'],
  ['code', 'message'],
];

function findRemoteError(obj: Record<string, unknown>, depth: number): { code?: string; message?: string } | undefined {
  let messageOnly: { message: string } | undefined;
  for (const [codeKey, messageKey] of PAIRS) {
    const code = text(obj[codeKey]);
    const message = text(obj[messageKey]);
    if (code !== undefined) return { code, ...(message === undefined ? {} : { message }) };
    if (message !== undefined && messageOnly === undefined) messageOnly = { message };
  }
  // Keystone-style `{"error":{"code":401,"message":..,"title":..}}`, or any other wrapper (docs/ges-api.md §1.4).
  if (depth < 3) {
    for (const value of Object.values(obj)) {
      if (!isRecord(value)) continue;
      const nested = findRemoteError(value, depth + 1);
      if (nested?.code !== undefined) return nested;
      if (nested?.message !== undefined && messageOnly === undefined) messageOnly = { message: nested.message };
      if (nested === undefined && messageOnly === undefined) {
        const title = text(value['title']);
        if (title !== undefined) messageOnly = { message: title };
      }
    }
  }
  return messageOnly;
}

function shorten(s: string): string {
  const oneLine = s.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_MESSAGE_CHARS ? `${oneLine.slice(0, MAX_MESSAGE_CHARS)}…` : oneLine;
}

/**
 * Reads the error code and message out of any of the four documented body shapes
 * (`error_code/error_msg`, `errorCode/errorMessage`, `code/message`, nested `error{}`), or
 * out of a non-JSON body. Empty fields count as absent (docs/ges-api.md §9.9).
 */
export function parseErrorBody(bodyText: string): RemoteError {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    // Not JSON (a proxy's HTML page, plain text): keep a readable fragment as the message.
    const plain = bodyText.replace(/<[^>]*>/g, ' ');
    const message = shorten(plain);
    return { code: undefined, message: message === '' ? undefined : redactString(message), requestId: undefined };
  }
  if (!isRecord(json)) return { code: undefined, message: undefined, requestId: undefined };
  const found = findRemoteError(json, 0);
  return {
    code: found?.code,
    message: found?.message === undefined ? undefined : redactString(shorten(found.message)),
    requestId: text(json['request_id']) ?? text(json['requestId']),
  };
}

/** `APIG.0301` and `apigw.0301` both become `APIGW.0301` (docs/ges-api.md §1.4). */
export function normalizeRemoteCode(code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  const upper = code.trim().toUpperCase();
  return upper.startsWith('APIG.') ? `APIGW.${upper.slice(5)}` : upper;
}

/** The request id GES or its gateway reported, from the headers or the body. */
export function requestIdOf(headers: ResponseHeaders, remote?: RemoteError): string | undefined {
  return headerValue(headers, 'x-request-id') ?? remote?.requestId ?? headerValue(headers, 'traceid');
}

/** Token errors at the gateway: renewing the token may help (docs/ges-api.md §9.17). */
export const TOKEN_REJECTED_CODES: ReadonlySet<string> = new Set(['APIGW.0301', 'APIGW.0307']);
const RETRYABLE_GES_CODES: ReadonlySet<string> = new Set(['GES.7005', 'GES.7006', 'GES.7051']);
// APIGW.0602/0607 are the client's fault (400); the other 06xx are gateway internals (docs/ges-api.md §5.2).
const NON_RETRYABLE_GATEWAY_06: ReadonlySet<string> = new Set(['APIGW.0602', 'APIGW.0607']);

const HINTS: Readonly<Record<string, string>> = {
  'GES.0016': ' (the project id in the URL does not match the token\'s project: check GES_PROJECT_ID and HWC_PROJECT)',
  'APIGW.0302': ' (the IAM user lacks GES permissions)',
  'APIGW.0101': ' (this GES endpoint does not offer the API: check GES_ENDPOINT; backup-files needs GES 2.4.3 or later)',
};

interface Classification {
  code: ErrorCode;
  retryable: boolean;
  verb: string;
}

function classify(status: number, remoteCode: string | undefined): Classification {
  if (status === 429 || remoteCode === 'APIGW.0308') return { code: ErrorCodes.GesThrottled, retryable: true, verb: 'GES throttled' };
  if (remoteCode !== undefined && RETRYABLE_GES_CODES.has(remoteCode)) {
    return { code: ErrorCodes.GesUnavailable, retryable: true, verb: 'GES is unavailable for' };
  }
  if (remoteCode?.startsWith('APIGW.06') && !NON_RETRYABLE_GATEWAY_06.has(remoteCode)) {
    return { code: ErrorCodes.GesUnavailable, retryable: true, verb: 'GES is unavailable for' };
  }
  if (status === 401) return { code: ErrorCodes.GesAuthFailed, retryable: false, verb: 'GES refused the token for' };
  if (remoteCode === 'GES.7000' || remoteCode === 'GES.0016') return { code: ErrorCodes.GraphNotFound, retryable: false, verb: 'GES refused' };
  if (remoteCode === 'GES.7024') return { code: ErrorCodes.BackupNotFound, retryable: false, verb: 'GES refused' };
  if (isRetryableStatus(STATUS_TABLES.ges, status)) return { code: ErrorCodes.GesUnavailable, retryable: true, verb: 'GES is unavailable for' };
  if (status >= 400) return { code: ErrorCodes.GesRequestRejected, retryable: false, verb: 'GES refused' };
  // 2xx carrying an error code (v1 bodies), 1xx, 3xx: never what a GES client expects.
  if (remoteCode !== undefined) return { code: ErrorCodes.GesRequestRejected, retryable: false, verb: 'GES refused' };
  return { code: ErrorCodes.GesBadResponse, retryable: false, verb: 'GES answered unexpectedly to' };
}

/**
 * Maps a GES / gateway answer that is not a success to a stable ArchiverError. `op` names
 * what was asked, in words a person can act on: "backup-files for graph X backup Y".
 * `details` carry the HTTP status, remote code and message, and the request id.
 */
export function gesErrorFromResponse(
  status: number,
  headers: ResponseHeaders,
  bodyText: string,
  op: string,
  now: number = Date.now(),
): ArchiverError {
  const remote = parseErrorBody(bodyText);
  const remoteCode = normalizeRemoteCode(remote.code);
  const { code, retryable, verb } = classify(status, remoteCode);
  const requestId = requestIdOf(headers, remote);
  const retryAfterMs = retryable ? parseRetryAfter(headerValue(headers, 'retry-after'), now) : undefined;

  const what = [remote.code, remote.message].filter((s) => s !== undefined).join(' ');
  const statusNote = what === '' ? `HTTP ${status}` : `${what}${/[.!?]$/.test(what) ? '' : '.'}${retryable ? ` (HTTP ${status})` : ''}`;
  const hint = remoteCode === undefined ? '' : (HINTS[remoteCode] ?? '');
  const wait = retryAfterMs === undefined ? '' : ` Retry after ${Math.ceil(retryAfterMs / 1000)} s.`;
  const message = `${verb} ${op}: ${statusNote}${hint}${wait}`;

  const details: Record<string, unknown> = { op, status };
  if (remote.code !== undefined) details['remoteCode'] = remote.code;
  if (remote.message !== undefined) details['remoteMessage'] = remote.message;
  if (requestId !== undefined) details['requestId'] = requestId;
  if (status === 401) details['tokenRejected'] = remoteCode === undefined || TOKEN_REJECTED_CODES.has(remoteCode);

  return new ArchiverError(code, message, {
    retryable,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    details,
  });
}

/**
 * True when a 2xx body nevertheless carries an error code (v1 bodies have `errorCode`,
 * empty on success: docs/ges-api.md §9.9). Returns the code when it does.
 */
export function errorCodeInSuccessBody(json: unknown): string | undefined {
  if (!isRecord(json)) return undefined;
  return text(json['error_code']) ?? text(json['errorCode']);
}

export interface NetworkFailureContext {
  /** The caller's signal fired: the caller gave up, nothing to retry. */
  callerAborted: boolean;
  /** Our per-request timeout fired. */
  timedOut: boolean;
  timeoutMs: number;
  /** "GES" or "IAM": who we were talking to. */
  service: string;
}

/** Maps a failure to get an answer at all (network, timeout, abort) to an ArchiverError. */
export function gesErrorFromNetwork(err: unknown, op: string, ctx: NetworkFailureContext): ArchiverError {
  if (err instanceof ArchiverError) return err;
  if (ctx.callerAborted) {
    return new ArchiverError(ErrorCodes.Aborted, `${op} was cancelled before ${ctx.service} answered`, { cause: err, details: { op } });
  }
  if (ctx.timedOut) {
    // No `cause` here on purpose: the cause would be a TimeoutError/AbortError, and the retry
    // policy (rightly) never retries an abort. This timeout is ours, and worth a retry.
    return new ArchiverError(ErrorCodes.GesUnavailable, `${ctx.service} did not answer ${op} within ${ctx.timeoutMs} ms`, {
      retryable: true,
      details: { op, reason: 'timeout', timeoutMs: ctx.timeoutMs },
    });
  }
  const networkCode = networkCodeOf(err);
  const rawMessage = (err as { message?: unknown } | null)?.message;
  const reason = redactString(typeof rawMessage === 'string' ? rawMessage : String(err));
  if (isRetryableNetworkCode(networkCode)) {
    return new ArchiverError(ErrorCodes.GesUnavailable, `${ctx.service} could not be reached for ${op}: ${networkCode} ${reason}`, {
      retryable: true,
      cause: err,
      details: { op, networkCode },
    });
  }
  return new ArchiverError(ErrorCodes.Internal, `Request to ${ctx.service} for ${op} failed: ${networkCode ?? ''} ${reason}`.replace(/\s+/g, ' '), {
    cause: err,
    details: { op, ...(networkCode === undefined ? {} : { networkCode }) },
  });
}
