// The OBS side: presigned GETs of backup files (docs/ges-api.md §7.2–7.5).
//
// Memory per request is O(1): bodies are streamed as subarrays of the shared content pattern
// (or a file read stream), and the loop waits for 'drain' whenever res.write() returns false.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContentSource } from './content.js';
import type { DownloadCut, FaultState } from './faults.js';
import { requestId, sendBody, splitUrl, track, type Tracked } from './http-util.js';
import type { FileEntry, Model } from './model.js';
import { verifyLink } from './signing.js';
import type { EmulatorOptions, EmulatorStats } from './types.js';

export interface ObsContext {
  model: Model;
  faults: FaultState;
  stats: EmulatorStats;
  options: EmulatorOptions;
  bucket: string;
  region: string;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function obsHeaders(): Record<string, string> {
  return {
    Server: 'OBS',
    'x-obs-request-id': requestId(),
    'x-obs-id-2': randomBytes(48).toString('base64'),
  };
}

function sendXmlError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}): void {
  const fields = Object.entries({ Code: code, Message: message, ...extra })
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`).join('');
  const ids = obsHeaders();
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${fields}<RequestId>${ids['x-obs-request-id']}</RequestId><HostId>${ids['x-obs-id-2']}</HostId></Error>`;
  sendBody(res, status, body, 'application/xml', { ...ids, ...headers });
}

const STATUS_ERRORS: Record<number, [string, string]> = {
  400: ['BadRequest', 'Bad Request'],
  403: ['AccessDenied', 'Access Denied'],
  404: ['NoSuchKey', 'The resource you requested does not exist'],
  408: ['RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.'],
  429: ['TooManyRequests', 'Too many requests.'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  503: ['SlowDown', 'Please reduce your request rate.'],
};

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * OBS Range semantics (docs/ges-api.md §7.4): bytes=a-b, a-, -n; end clamped; start past the end
 * → 416; anything malformed or inverted → ignored (200 with the whole object). Multiple
 * ranges are treated as malformed here (real OBS answers multipart/byteranges).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  const first = m[1] ?? '';
  const last = m[2] ?? '';
  if (first === '') {
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size : Math.min(Number(last) + 1, size) };
}

function etagMatches(header: string, etag: string): boolean {
  return header.split(',').map((s) => s.trim().replace(/^W\//, '')).some((t) => t === '*' || t === etag || `"${t}"` === etag);
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function flushed(res: ServerResponse, piece: Buffer): Promise<void> {
  return new Promise((resolve) => {
    res.write(piece, () => resolve());
  });
}

interface StreamPlan {
  source: ContentSource;
  start: number;
  end: number;
  cut: DownloadCut | undefined;
  onBytes(n: number): void;
  onCut(): void;
}

async function streamBody(res: ServerResponse, faults: FaultState, plan: StreamPlan): Promise<void> {
  const limit = plan.cut ? plan.cut.afterBytes : plan.end - plan.start;
  let sent = 0;
  let paceRate: number | null = null;
  let paceStart = 0;
  let paceBytes = 0;
  const cutNow = async (last: Buffer | undefined): Promise<void> => {
    if (last && last.length > 0) await flushed(res, last);
    else await new Promise<void>((resolve) => res.write('', () => resolve()));
    plan.onCut();
    res.destroy();
  };
  if (plan.cut && limit === 0) {
    res.flushHeaders();
    return cutNow(undefined);
  }
  for await (let piece of plan.source.pieces(plan.start, plan.end)) {
    while (piece.length > 0) {
      if (res.destroyed) return;
      let n = Math.min(piece.length, limit - sent);
      const rate = faults.throttle;
      if (rate !== null) {
        if (rate !== paceRate) {
          paceRate = rate;
          paceStart = Date.now();
          paceBytes = 0;
        }
        n = Math.min(n, Math.max(1024, Math.min(64 * 1024, Math.floor(rate / 20))));
        const wait = paceStart + (paceBytes / rate) * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (res.destroyed) return;
        paceBytes += n;
      } else {
        paceRate = null;
      }
      const part = n === piece.length ? piece : piece.subarray(0, n);
      piece = piece.subarray(n);
      sent += n;
      plan.onBytes(n);
      if (plan.cut && sent >= limit) return cutNow(part);
      if (!res.write(part)) await waitDrain(res);
    }
  }
  if (!res.destroyed) res.end();
}

export function createObsHandler(ctx: ObsContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const lookup = (path: string): FileEntry | undefined => {
    const seg = path.split('/');
    if (seg.length !== 5 || seg[0] !== '') return undefined;
    try {
      const [, bucket, graphId, backupId, name] = seg.map((s) => decodeURIComponent(s));
      if (bucket !== ctx.bucket) return undefined;
      return ctx.model.backup(graphId ?? '', backupId ?? '')?.files.find((f) => f.name === name);
    } catch {
      return undefined;
    }
  };

  const serve = async (req: IncomingMessage, res: ServerResponse, tracked: Tracked): Promise<void> => {
    const { stats, faults } = ctx;
    stats.downloadRequests++;
    if (req.headers['x-auth-token'] !== undefined || req.headers.authorization !== undefined) stats.authHeadersSentToObs++;
    if (req.headers.range !== undefined) stats.rangeRequests++;
    const { path, rawQuery } = splitUrl(req.url);
    const file = lookup(path);

    const injected = file && faults.takeObsStatus(file.name);
    if (injected !== undefined) {
      const [code, message] = STATUS_ERRORS[injected] ?? ['InternalError', 'We encountered an internal error. Please try again.'];
      return sendXmlError(res, injected, code, message);
    }

    const extra: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if ((k.startsWith('x-obs-') || k.startsWith('x-amz-')) && typeof v === 'string') extra[k] = v;
    }
    const contentType = req.headers['content-type'];
    const md5Header = req.headers['content-md5'];
    const contentMd5 = typeof md5Header === 'string' ? md5Header : undefined;
    const verdict = verifyLink({
      method: req.method ?? 'GET', rawPath: path, rawQuery, host: req.headers.host ?? '', region: ctx.region,
      headers: { contentType, contentMd5, extra },
      hasAuthorizationHeader: req.headers.authorization !== undefined,
    });
    if (!verdict.ok) return sendXmlError(res, verdict.status, verdict.code, verdict.message);

    const nowMs = Date.now();
    if (nowMs > verdict.expiresAt * 1000 || (file !== undefined && verdict.expiresAt <= file.revokedThrough)) {
      return sendXmlError(res, 403, 'AccessDenied', 'Request has expired', {
        Expires: new Date(verdict.expiresAt * 1000).toISOString(),
        ServerTime: new Date(nowMs).toISOString(),
      });
    }
    if (!file) return sendXmlError(res, 404, 'NoSuchKey', 'The resource you requested does not exist', { Resource: path });

    const source = file.content;
    const lastModified = new Date(Math.floor(source.lastModified.getTime() / 1000) * 1000);
    const ifMatch = req.headers['if-match'];
    const ifUnmodified = req.headers['if-unmodified-since'];
    if (ifMatch !== undefined && !etagMatches(ifMatch, source.etag)) {
      return sendXmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
    }
    if (ifMatch === undefined && ifUnmodified !== undefined && Date.parse(ifUnmodified) < lastModified.getTime()) {
      return sendXmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Unmodified-Since' });
    }
    const common = { ...obsHeaders(), ETag: source.etag, 'Last-Modified': lastModified.toUTCString() };
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModified = req.headers['if-modified-since'];
    if ((ifNoneMatch !== undefined && etagMatches(ifNoneMatch, source.etag))
      || (ifNoneMatch === undefined && ifModified !== undefined && Date.parse(ifModified) >= lastModified.getTime())) {
      res.writeHead(304, common);
      res.end();
      return;
    }

    const range = parseRange(req.headers.range, source.bytes);
    if (range.kind === 'unsatisfiable') {
      return sendXmlError(res, 416, 'InvalidRange', 'The requested range cannot be satisfied.', { RangeRequested: req.headers.range ?? '', ActualObjectSize: String(source.bytes) }, { 'Content-Range': `bytes */${source.bytes}` });
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : source.bytes;
    const headers: Record<string, string> = {
      ...common,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'binary/octet-stream',
      'Content-Length': String(end - start),
    };
    if (range.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end - 1}/${source.bytes}`;
    res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = faults.takeCut(file.name, end - start);
    tracked.sentBytes = 0;
    await streamBody(res, faults, {
      source, start, end, cut,
      onBytes: (n) => {
        tracked.sentBytes = (tracked.sentBytes ?? 0) + n;
        stats.downloadBytes.set(file.name, (stats.downloadBytes.get(file.name) ?? 0) + n);
      },
      onCut: () => {
        if (cut?.kind !== 'expire-links') return;
        file.revokedThrough = file.lastIssuedExpires;
      },
    });
  };

  return (req, res) => serve(req, res, track('obs', req, res, ctx.stats, ctx.options.onRequest));
}
