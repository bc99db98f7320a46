import { request, type Dispatcher } from 'undici';
import { ArchiverError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { ResponseHeaders } from '../should-retry.js';
import { gesErrorFromNetwork } from './errors.js';

/**
 * One HTTP exchange with GES or IAM: one attempt, no retry (the caller wraps it in the retry
 * policy). One AbortSignal, the caller's combined with the per-request timeout, goes all the
 * way to the socket and covers reading the body too. Every body is read or dumped.
 */
export interface HttpExchange {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Words for messages: "list backups of graph X". */
  op: string;
  /** "GES" or "IAM". */
  service: string;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  /** Bound on the body held in memory; a larger body is a bad response. */
  maxBodyBytes: number;
}

export interface HttpAnswer {
  status: number;
  headers: ResponseHeaders;
  bodyText: string;
}

export interface HttpDeps {
  dispatcher: Dispatcher;
  logger: Logger;
}

/** Bodies of error answers are only read this far (the message is all we need). */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

async function readBounded(body: Dispatcher.ResponseData['body'], limit: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      // Stops the download: nothing past the limit is read into memory.
      body.destroy();
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

export async function exchange(deps: HttpDeps, x: HttpExchange): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(x.timeoutMs);
  const signal = x.signal === undefined ? timeout : AbortSignal.any([x.signal, timeout]);
  const startedAt = performance.now();
  const logFields = { service: x.service, method: x.method, path: x.url.pathname };
  const fail = (err: unknown): ArchiverError => {
    const mapped = gesErrorFromNetwork(err, x.op, {
      callerAborted: x.signal?.aborted === true,
      timedOut: timeout.aborted,
      timeoutMs: x.timeoutMs,
      service: x.service,
    });
    deps.logger.debug({ ...logFields, durationMs: Math.round(performance.now() - startedAt), code: mapped.code }, 'ges request failed');
    return mapped;
  };

  let response: Dispatcher.ResponseData;
  try {
    response = await request(x.url, {
      dispatcher: deps.dispatcher,
      method: x.method,
      headers: x.headers,
      ...(x.body === undefined ? {} : { body: x.body }),
      signal,
      headersTimeout: x.timeoutMs,
      bodyTimeout: x.timeoutMs,
    });
  } catch (err) {
    throw fail(err);
  }

  const ok = response.statusCode >= 200 && response.statusCode < 300;
  let read: { text: string; truncated: boolean };
  try {
    read = await readBounded(response.body, ok ? x.maxBodyBytes : MAX_ERROR_BODY_BYTES);
  } catch (err) {
    throw fail(err);
  }
  deps.logger.debug(
    { ...logFields, status: response.statusCode, durationMs: Math.round(performance.now() - startedAt) },
    'ges request',
  );
  if (ok && read.truncated) {
    throw new ArchiverError(ErrorCodes.GesBadResponse, `${x.service} answered ${x.op} with a body larger than ${x.maxBodyBytes} bytes`, {
      details: { op: x.op, status: response.statusCode, maxBodyBytes: x.maxBodyBytes },
    });
  }
  return { status: response.statusCode, headers: response.headers, bodyText: read.text };
}
