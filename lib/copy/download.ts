import { getGlobalDispatcher, type Dispatcher } from 'undici';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { headerValue as header, isRetryableNetworkCode, isRetryableStatus, networkCodeOf, parseRetryAfter, STATUS_TABLES } from '../should-retry.js';

/**
 * One GET of a download link, classified. The link string is sent as GES gave it: undici gets
 * the origin and the raw path+query, never a re-serialised URL (a URL object re-encodes some
 * characters and would break V2/V4 signatures, docs/ges-api.md §9.14). No HEAD, no redirects
 * followed, no auth headers, no content decoding (undici's request() never decodes).
 */

export type BodyStream = Dispatcher.ResponseData['body'];

export type OpenResult =
  | {
    kind: 'body';
    status: 200 | 206;
    body: BodyStream;
    /** Bytes this response will carry (at least 1 for a 206). */
    length: number;
    /** First byte's offset in the file (0 for a 200). */
    start: number;
    /** The file's whole length. */
    total: number;
    etag: string | undefined;
    lastModified: string | undefined;
  }
  /**
   * A 206 that cannot be used: empty, without a Content-Range, or whose Content-Range disagrees
   * with its length or with the range asked for. The body is already discarded. Not a reason to
   * trust the source less, nor to start again: the caller counts it as an attempt that made no progress.
   */
  | { kind: 'bad-range'; reason: string }
  /** 403: expired or refused link; a fresh one may work. */
  | { kind: 'refused'; remoteCode: string | undefined }
  /** 412: the If-Match ETag no longer matches. */
  | { kind: 'precondition-failed' }
  /** 416: the offset is at or past the end. */
  | { kind: 'range-not-satisfiable'; total: number | undefined };

/**
 * What makes a ranged request safe: the bytes of a range may be mixed with bytes fetched earlier
 * only if the server promises they come from the same version of the file. A strong ETag
 * (`If-Match`) does; failing that `Last-Modified` (`If-Unmodified-Since`). A weak ETag does not.
 */
export interface SourceValidator {
  etag?: string | undefined;
  lastModified?: string | undefined;
}

export interface OpenOptions {
  dispatcher?: Dispatcher | undefined;
  /** First byte wanted. 0 with no `end` sends no Range header at all (the whole file). */
  offset: number;
  /** Last byte wanted + 1; undefined for "to the end". */
  end?: number | undefined;
  /** Sent as If-Match / If-Unmodified-Since with every ranged request. */
  validator?: SourceValidator | undefined;
  signal: AbortSignal;
}

/** True for an ETag that may be used with If-Match (RFC 9110: strong comparison). */
export function isStrongEtag(etag: string | undefined): etag is string {
  return etag !== undefined && etag !== '' && !etag.startsWith('W/');
}

/** The validator a response offers for later ranges, or undefined when none is safe. */
export function validatorOf(etag: string | undefined, lastModified: string | undefined): SourceValidator | undefined {
  if (isStrongEtag(etag)) return { etag };
  if (lastModified !== undefined && !Number.isNaN(Date.parse(lastModified))) return { lastModified };
  return undefined;
}

/**
 * Stops a body we no longer want. undici reports its own abort of an unfinished body as an
 * 'error' event; that abort is the one we asked for, so it gets a listener instead of
 * surfacing as an unhandled error.
 */
export function discardBody(body: BodyStream): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Origin and raw request target of an absolute http(s) URL string, without re-encoding. */
export function splitRawUrl(url: string): { origin: string; path: string } {
  const origin = new URL(url).origin;
  const schemeEnd = url.indexOf('://');
  const rest = url.slice(schemeEnd + 3);
  const targetStart = rest.search(/[/?#]/);
  let path = targetStart < 0 ? '/' : rest.slice(targetStart);
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (!path.startsWith('/')) path = `/${path}`;
  return { origin, path };
}

/** `Content-Range: bytes a-b/total` → parts, or undefined. */
export function parseContentRange(value: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  if (m) return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
  const unsatisfied = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(value);
  if (unsatisfied) return { start: -1, end: -1, total: Number(unsatisfied[1]) };
  return undefined;
}

/** Reads at most a few KiB of an error body (for its XML <Code>), then discards the rest. */
async function errorCode(body: BodyStream): Promise<string | undefined> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.length > 4096) break;
    }
  } catch {
    // The code is a nicety for the log; a broken error body changes nothing.
    return undefined;
  } finally {
    discardBody(body);
  }
  return /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1];
}

function downloadError(message: string, retryable: boolean, details: Record<string, unknown>, extra: { cause?: unknown; retryAfterMs?: number | undefined } = {}): ArchiverError {
  return new ArchiverError(ErrorCodes.DownloadFailed, message, { retryable, details, ...extra });
}

/**
 * Sends one GET (with `Range: bytes=offset-[end-1]` unless the whole file is wanted, and the
 * validator's precondition) and classifies the answer. Throws DOWNLOAD_FAILED, retryable for
 * the network errors and statuses lib/should-retry.ts lists (408, 429, 5xx, with the server's
 * Retry-After), not retryable for redirects and other statuses.
 */
export async function openDownload(url: string, opts: OpenOptions): Promise<OpenResult> {
  const { origin, path } = splitRawUrl(url);
  const host = new URL(origin).host;
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  const ranged = opts.offset > 0 || opts.end !== undefined;
  if (ranged) headers['range'] = `bytes=${opts.offset}-${opts.end === undefined ? '' : opts.end - 1}`;
  if (ranged && opts.validator?.etag !== undefined) headers['if-match'] = opts.validator.etag;
  else if (ranged && opts.validator?.lastModified !== undefined) headers['if-unmodified-since'] = opts.validator.lastModified;
  const dispatcher = opts.dispatcher ?? getGlobalDispatcher();
  let res: Dispatcher.ResponseData;
  try {
    res = await dispatcher.request({ origin, path, method: 'GET', headers, signal: opts.signal });
  } catch (err) {
    if (opts.signal.aborted) throw err;
    const code = networkCodeOf(err);
    throw downloadError(`Download from ${host} failed before a response arrived${code === undefined ? '' : ` (${code})`}`, isRetryableNetworkCode(code), { host, errorCode: code }, { cause: err });
  }
  const { statusCode: status } = res;
  const h = res.headers;
  if (status === 200 || status === 206) {
    const length = Number(header(h, 'content-length'));
    const etag = header(h, 'etag');
    const lastModified = header(h, 'last-modified');
    if (header(h, 'content-length') === undefined || !Number.isSafeInteger(length) || length < 0) {
      discardBody(res.body);
      throw downloadError(`Download from ${host} answered ${status} without a valid Content-Length`, false, { host, status });
    }
    if (status === 200) return { kind: 'body', status, body: res.body, length, start: 0, total: length, etag, lastModified };
    const range = parseContentRange(header(h, 'content-range'));
    const wantedEnd = opts.end === undefined ? undefined : opts.end - 1;
    const reason = length === 0 ? 'an empty 206'
      : !range || range.total === undefined || range.start < 0 ? 'a 206 without a usable Content-Range'
        : range.end - range.start + 1 !== length ? 'a 206 whose Content-Range disagrees with its Content-Length'
          : range.start !== opts.offset ? `a 206 that starts at byte ${range.start} instead of ${opts.offset}`
            : range.end >= range.total || (wantedEnd !== undefined && range.end > wantedEnd) ? 'a 206 that runs past the range asked for'
              : undefined;
    if (reason !== undefined || !range || range.total === undefined) {
      discardBody(res.body);
      return { kind: 'bad-range', reason: reason ?? 'a 206 without a usable Content-Range' };
    }
    return { kind: 'body', status, body: res.body, length, start: range.start, total: range.total, etag, lastModified };
  }
  const remoteCode = await errorCode(res.body);
  const details = { host, status, remoteCode };
  if (status === 403) return { kind: 'refused', remoteCode };
  if (status === 412) return { kind: 'precondition-failed' };
  if (status === 416) return { kind: 'range-not-satisfiable', total: parseContentRange(header(h, 'content-range'))?.total };
  if (status >= 300 && status < 400) {
    throw downloadError(`Download from ${host} answered a redirect (${status}); redirects are not followed`, false, details);
  }
  if (isRetryableStatus(STATUS_TABLES.download, status)) {
    throw downloadError(`Download from ${host} answered ${status}${remoteCode ? ` ${remoteCode}` : ''}`, true, details, {
      retryAfterMs: parseRetryAfter(header(h, 'retry-after')),
    });
  }
  throw downloadError(`Download from ${host} answered ${status}${remoteCode ? ` ${remoteCode}` : ''}`, false, details);
}
