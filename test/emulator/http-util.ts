import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorRequestEvent, EmulatorStats } from './types.js';

export function requestId(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

export function splitUrl(rawUrl: string | undefined): { path: string; rawQuery: string } {
  const url = rawUrl ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? { path: url, rawQuery: '' } : { path: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

export function sendBody(res: ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(buf.length), ...headers });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendBody(res, status, JSON.stringify(body), 'application/json;charset=UTF-8', headers);
}

/** Reads a small request body; anything past `limit` bytes is refused. */
export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Set `sentBytes` when streaming; otherwise the Content-Length is reported. */
export interface Tracked {
  sentBytes: number | undefined;
}

/** Counts the request by Host and reports it to `onRequest` when the response is done. */
export function track(
  server: 'ges' | 'obs',
  req: IncomingMessage,
  res: ServerResponse,
  stats: EmulatorStats,
  onRequest: ((e: EmulatorRequestEvent) => void) | undefined,
): Tracked {
  const tracked: Tracked = { sentBytes: undefined };
  const host = req.headers.host ?? '';
  stats.requestsByHost.set(host, (stats.requestsByHost.get(host) ?? 0) + 1);
  if (!onRequest) return tracked;
  const started = process.hrtime.bigint();
  const { path } = splitUrl(req.url);
  res.on('close', () => {
    onRequest({
      server, method: req.method ?? '', path, status: res.statusCode,
      bodyBytes: tracked.sentBytes ?? Number(res.getHeader('content-length') ?? 0),
      ms: Number(process.hrtime.bigint() - started) / 1e6,
    });
  });
  return tracked;
}
