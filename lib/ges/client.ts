import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { createRetryPolicy, type RetryEvent, type RetryPolicy } from '../retry.js';
import { NOT_SENT_NETWORK_CODES } from '../should-retry.js';
import { akskSigner, iamTokenSource, staticTokenSource, type AkSkSigner, type TokenSource } from './auth.js';
import { errorCodeInSuccessBody, gesErrorFromResponse } from './errors.js';
import { exchange, type HttpAnswer } from './http.js';
import type { GesBackup, GesBackupFiles, GesJob } from './types.js';
import {
  backupFilesSchema, backupPageSchema, importAnswerSchema, jobStatusSchema, normalizeBackupFiles, normalizeBackupPage,
  normalizeImportAnswer, normalizeJobStatus, parseJsonBody, validateBody,
} from './wire.js';

export interface GesClient {
  /** Every backup of the graph, across all pages, deduplicated by id (docs/ges-api.md §4.2, §9.10). */
  listBackups(graphId: string, options?: { signal?: AbortSignal }): Promise<GesBackup[]>;
  /** Fresh download links for a backup's files (docs/ges-api.md §4.6). `files` may be empty. */
  getBackupFiles(graphId: string, backupId: string, options?: { signal?: AbortSignal }): Promise<GesBackupFiles>;
  /** The project id in use (from config, or from the IAM token's project.id). */
  projectId(options?: { signal?: AbortSignal }): Promise<string>;
}

/** Bringing a backup back into GES (docs/ges-api.md §4.7) and following the job it starts (§4.4). */
export interface GesImportApi {
  /**
   * `POST /v2/{project_id}/graphs/{graph_id}/backups/import` with `{"import_path": "bucket/prefix"}`:
   * GES imports the backup files stored there (in OBS) as a backup of the graph. Returns the job id.
   * Not idempotent: resent only when GES surely did not act on it (429, connection refused).
   */
  importBackup(graphId: string, importPath: string, options?: { signal?: AbortSignal }): Promise<{ jobId: string }>;
  /** `GET /v2/{project_id}/graphs/{graph_id}/jobs/{job_id}/status`. */
  getJobStatus(graphId: string, jobId: string, options?: { signal?: AbortSignal }): Promise<GesJob>;
}

export interface GesClientDeps {
  config: Config['ges'];
  logger: Logger;
  /** Default: `createRetryPolicy()`. */
  retry?: RetryPolicy;
  /** Default: a new undici Agent owned by this client. Pass the composition root's one to share and close it. */
  dispatcher?: Dispatcher;
  /** Clock for token expiry and `receivedAt`. Default `Date.now`. */
  now?: () => number;
  /**
   * Told about every GES_AUTH_FAILED the client throws: the Lambda composition root
   * (functions/lib/runtime.ts) then reads its credentials secret again, so a rotated password is used by the next invocation.
   */
  onAuthFailure?: (err: ArchiverError) => void;
}

/** Asked per page; a server that caps it lower is followed by offset (docs/ges-api.md §9.10). */
export const BACKUP_PAGE_LIMIT = 100;
/** Guard against a server that never stops producing new ids (across all passes of one listing). */
const MAX_PAGES = 1000;
/** Passes over the pages before a listing short of its backup_count fails (LISTING_INCOMPLETE). */
export const MAX_LIST_PASSES = 3;
/** A page of 100 backups is a few tens of KB; this bounds what one answer may hold in memory. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * GES's backup list stayed short of its own `backup_count` after MAX_LIST_PASSES passes (a
 * server that ignores `offset`, or pages that keep shifting). `latest` and `all` must not be
 * decided on a subset; `partial` still serves to find an explicitly named backup.
 */
export class ListingIncompleteError extends ArchiverError {
  /** The backups GES did list. Not logged (only `details` are). */
  readonly partial: readonly GesBackup[];

  constructor(graphId: string, partial: readonly GesBackup[], backupCount: number, stoppedAt: number) {
    super(
      ErrorCodes.ListingIncomplete,
      `GES listed only ${partial.length} distinct backups of graph ${graphId} although its backup_count is ${backupCount} `
      + `(${MAX_LIST_PASSES} passes over the pages; none brought anything new past offset ${stoppedAt}). `
      + 'Nothing of this graph is decided on a partial list: run again later; if it persists, GES is not honouring the offset parameter.',
      { details: { graphId, listed: partial.length, backupCount, stoppedAt, passes: MAX_LIST_PASSES } },
    );
    this.partial = partial;
  }
}

function checkId(kind: 'graph' | 'backup', id: string): void {
  // encodeURIComponent leaves "." and ".." alone, and the URL parser would resolve them.
  if (id.trim() === '' || id === '.' || id === '..') {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `A ${kind} id must be a non-empty id, got ${JSON.stringify(id)}`);
  }
}

/**
 * For a request that is not idempotent (starting an import job): only a throttled request (the
 * gateway refused it) or one that never reached GES is safe to send again; any other failure
 * might have started the job, so it is final and says how to check.
 */
function onlySafeResends(err: unknown, op: string): Error {
  if (!(err instanceof ArchiverError)) return toArchiverError(err);
  if (!err.retryable) return err;
  const networkCode = err.details?.['networkCode'];
  if (err.code === ErrorCodes.GesThrottled || (typeof networkCode === 'string' && NOT_SENT_NETWORK_CODES.has(networkCode))) return err;
  return new ArchiverError(err.code, `${err.message} GES may still have started ${op}: check the graph's jobs in the GES console before trying again.`, {
    cause: err.cause,
    ...(err.details === undefined ? {} : { details: err.details }),
  });
}

/** What a caller sees when the retry loop ends: always an ArchiverError; ABORTED when it gave up. */
function finalError(err: unknown, op: string, signal: AbortSignal | undefined): ArchiverError {
  if (err instanceof ArchiverError) return err;
  // p-retry rejects with the signal's reason when the caller aborts during a backoff wait.
  if (signal?.aborted === true) {
    return new ArchiverError(ErrorCodes.Aborted, `${op} was cancelled before GES answered`, { cause: err, details: { op } });
  }
  return toArchiverError(err);
}

export function createGesClient(deps: GesClientDeps): GesClient & GesImportApi {
  const { config, logger } = deps;
  const retry = deps.retry ?? createRetryPolicy();
  const dispatcher = deps.dispatcher ?? new Agent();
  const now = deps.now ?? Date.now;
  const http = { dispatcher, logger };
  // AK/SK signs every request; the other two modes send an X-Auth-Token.
  const credentials: { signer: AkSkSigner; tokens?: undefined } | { signer?: undefined; tokens: TokenSource } =
    config.auth.mode === 'aksk'
      ? { signer: akskSigner({ auth: config.auth, now, logger }) }
      : {
          tokens: config.auth.mode === 'iam'
            ? iamTokenSource({ ...http, auth: config.auth, timeoutMs: config.requestTimeoutMs, now })
            : staticTokenSource(config.auth.token),
        };

  function failed(err: unknown, op: string, signal: AbortSignal | undefined): ArchiverError {
    const e = finalError(err, op, signal);
    if (e.code === ErrorCodes.GesAuthFailed) deps.onAuthFailure?.(e);
    return e;
  }

  const onRetry = (op: string) => (event: RetryEvent): void => {
    const err = event.error instanceof ArchiverError ? event.error : undefined;
    logger.warn(
      { op, attempt: event.attempt, delayMs: Math.round(event.delayMs), code: err?.code, status: err?.details?.['status'] },
      'ges request retry',
    );
  };

  /** One attempt's worth of project id: no retry of its own (the caller's attempt is retried). */
  async function resolveProjectId(signal: AbortSignal | undefined): Promise<string> {
    if (config.projectId !== undefined) return config.projectId;
    const fromToken = await credentials.tokens?.projectId(signal);
    if (fromToken !== undefined && fromToken !== '') return fromToken;
    throw config.auth.mode === 'iam'
      ? new ArchiverError(ErrorCodes.GesBadResponse, 'IAM issued a token without token.project.id; set GES_PROJECT_ID', {
          details: { fields: ['token.project.id'] },
        })
      : new ArchiverError(ErrorCodes.ConfigInvalid, `GES_PROJECT_ID is required with ${config.auth.mode === 'aksk' ? 'AK/SK auth' : 'GES_AUTH_TOKEN'}`);
  }

  function authFailed(err: ArchiverError, renewed: boolean): ArchiverError {
    const advice = config.auth.mode === 'token'
      ? ' Set a valid GES_AUTH_TOKEN (it must be scoped to the project in GES_PROJECT_ID).'
      : renewed
        ? ' A freshly issued IAM token was refused too: check the IAM user\'s GES permissions and that HWC_PROJECT names the GES region.'
        : '';
    return new ArchiverError(ErrorCodes.GesAuthFailed, `${err.message}${advice}`, {
      details: { ...err.details, authMode: config.auth.mode, renewed },
    });
  }

  /** GET a GES path and return its JSON body; retried, with one token renewal on a 401. */
  function getJson(
    path: (projectId: string) => string,
    query: Record<string, string>,
    op: string,
    signal: AbortSignal | undefined,
  ): Promise<{ json: unknown; receivedAt: number }> {
    return requestJson('GET', path, query, undefined, op, signal);
  }

  /**
   * One GES call returning its JSON body: retried (a POST only when resending is safe), with
   * one token renewal on a 401 (GES refused the request, so resending it is safe); signed
   * instead with an AK/SK, whose refusal is final (lib/ges/auth.ts, akskSigner).
   */
  async function requestJson(
    method: 'GET' | 'POST',
    path: (projectId: string) => string,
    query: Record<string, string>,
    body: unknown,
    op: string,
    signal: AbortSignal | undefined,
  ): Promise<{ json: unknown; receivedAt: number }> {
    let renewed = false;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    const send = (url: URL, sent: Record<string, string>): Promise<HttpAnswer> => exchange(http, {
      method,
      url,
      headers: sent,
      ...(payload === undefined ? {} : { body: payload }),
      op,
      service: 'GES',
      signal,
      timeoutMs: config.requestTimeoutMs,
      maxBodyBytes: MAX_BODY_BYTES,
    });

    /** One request with an X-Auth-Token, and one renewal when GES rejects the token. */
    const sendWithToken = async (url: URL, source: TokenSource): Promise<HttpAnswer> => {
      const token = await source.token(signal);
      const answer = await send(url, { ...headers, 'x-auth-token': token });
      if (answer.status !== 401) return answer;
      const err = gesErrorFromResponse(answer.status, answer.headers, answer.bodyText, op, now());
      if (!source.renewable || renewed || err.details?.['tokenRejected'] !== true) throw authFailed(err, renewed);
      // A token can be revoked long before expires_at (docs/ges-api.md §9.17): renew once, ask again once.
      renewed = true;
      source.invalidate(token);
      logger.info({ op, remoteCode: err.details['remoteCode'], status: 401 }, 'ges token rejected; renewing');
      const again = await send(url, { ...headers, 'x-auth-token': await source.token(signal) });
      if (again.status === 401) throw authFailed(gesErrorFromResponse(401, again.headers, again.bodyText, op, now()), true);
      return again;
    };

    const attempt = async (): Promise<{ json: unknown; receivedAt: number }> => {
      const projectId = await resolveProjectId(signal);
      const url = new URL(`${config.endpoint}${path(projectId)}`);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      const answer = credentials.tokens === undefined
        // X-Project-Id as the Huawei SDKs send it with an AK/SK (docs/ges-api.md §2.3).
        ? await credentials.signer.exchange({ method, url, headers: { ...headers, 'x-project-id': projectId }, body: payload }, (signed) => send(url, signed), op, signal)
        : await sendWithToken(url, credentials.tokens);
      if (answer.status < 200 || answer.status >= 300) {
        throw gesErrorFromResponse(answer.status, answer.headers, answer.bodyText, op, now());
      }
      const receivedAt = now();
      const json = parseJsonBody(answer.bodyText, op);
      // v1-style bodies say errors with a 200 and a non-empty errorCode (docs/ges-api.md §9.9).
      if (errorCodeInSuccessBody(json) !== undefined) {
        throw gesErrorFromResponse(answer.status, answer.headers, answer.bodyText, op, receivedAt);
      }
      return { json, receivedAt };
    };

    const guarded = method === 'GET' ? attempt : async () => {
      try {
        return await attempt();
      } catch (err) {
        throw onlySafeResends(err, op);
      }
    };
    try {
      return await retry(guarded, { signal, onRetry: onRetry(op) });
    } catch (err) {
      throw failed(err, op, signal);
    }
  }

  /**
   * One pass over the pages from offset 0, adding what it finds to `byId`. Returns the last
   * `backup_count` GES gave (undefined when it gives none) and the requests it made.
   */
  async function listPass(graphId: string, byId: Map<string, GesBackup>, pagesLeft: number, signal: AbortSignal | undefined): Promise<{ total: number | undefined; pages: number; offset: number }> {
    let offset = 0;
    let largestPage = 0;
    let total: number | undefined;
    let pageNo = 0;
    for (; ; pageNo++) {
      if (pageNo >= pagesLeft) {
        throw new ArchiverError(ErrorCodes.GesBadResponse, `GES kept returning new backups of graph ${graphId} after ${MAX_PAGES} pages`, {
          details: { graphId, pages: MAX_PAGES },
        });
      }
      const op = `the backup list of graph ${graphId} (offset ${offset})`;
      const { json } = await getJson(
        (p) => `/v2/${encodeURIComponent(p)}/graphs/${encodeURIComponent(graphId)}/backups`,
        { offset: String(offset), limit: String(BACKUP_PAGE_LIMIT) },
        op,
        signal,
      );
      const page = normalizeBackupPage(validateBody(backupPageSchema, json, op), graphId);
      let fresh = 0;
      for (const backup of page.backups) {
        if (byId.has(backup.id)) continue;
        byId.set(backup.id, backup);
        fresh++;
      }
      const size = page.backups.length;
      total = page.total ?? total;
      logger.debug({ graphId, offset, size, fresh, total: page.total }, 'ges backup page');
      // A page with nothing new ends the pass: pages shifted by new backups repeat ids, and a
      // server that ignores `offset` repeats its first page forever. The caller checks the
      // count against backup_count.
      if (size === 0 || fresh === 0) break;
      offset += size;
      if (page.total !== undefined) {
        if (offset >= page.total) break;
      } else if (size < BACKUP_PAGE_LIMIT && size < largestPage) {
        // Short compared with earlier pages: the end. A first page shorter than asked may just
        // be the server's own cap, so one more page is asked before concluding.
        break;
      }
      largestPage = Math.max(largestPage, size);
    }
    return { total, pages: pageNo + 1, offset };
  }

  async function listBackups(graphId: string, options: { signal?: AbortSignal } = {}): Promise<GesBackup[]> {
    checkId('graph', graphId);
    const byId = new Map<string, GesBackup>();
    let pages = 0;
    let last = { total: 0, offset: 0 };
    // A listing is complete when it holds as many ids as backup_count says. New backups
    // arriving mid-listing shift the pages and hide a few: another pass from offset 0 finds
    // them. Without backup_count, completeness cannot be checked and one pass is all there is.
    for (let pass = 1; pass <= MAX_LIST_PASSES; pass++) {
      const result = await listPass(graphId, byId, MAX_PAGES - pages, options.signal);
      pages += result.pages;
      if (result.total === undefined || byId.size >= result.total) return [...byId.values()];
      last = { total: result.total, offset: Math.max(last.offset, result.offset) };
      logger.warn({ graphId, pass, listed: byId.size, backupCount: result.total, offset: result.offset }, 'ges backup list shorter than its backup_count');
    }
    throw new ListingIncompleteError(graphId, [...byId.values()], last.total, last.offset);
  }

  async function getBackupFiles(graphId: string, backupId: string, options: { signal?: AbortSignal } = {}): Promise<GesBackupFiles> {
    checkId('graph', graphId);
    checkId('backup', backupId);
    const op = `backup-files for graph ${graphId} backup ${backupId}`;
    const { json, receivedAt } = await getJson(
      (p) => `/v2/${encodeURIComponent(p)}/graphs/${encodeURIComponent(graphId)}/backup-files`,
      { backup_id: backupId },
      op,
      options.signal,
    );
    const { bucket, files } = normalizeBackupFiles(validateBody(backupFilesSchema, json, op));
    logger.debug({ graphId, backupId, files: files.length }, 'ges backup files');
    return { bucket, files, receivedAt };
  }

  async function projectId(options: { signal?: AbortSignal } = {}): Promise<string> {
    const { signal } = options;
    try {
      return await retry(() => resolveProjectId(signal), { signal, onRetry: onRetry('the project id') });
    } catch (err) {
      throw failed(err, 'the project id', signal);
    }
  }

  async function importBackup(graphId: string, importPath: string, options: { signal?: AbortSignal } = {}): Promise<{ jobId: string }> {
    checkId('graph', graphId);
    const op = `the import of ${importPath} into graph ${graphId}`;
    const { json } = await requestJson(
      'POST',
      (p) => `/v2/${encodeURIComponent(p)}/graphs/${encodeURIComponent(graphId)}/backups/import`,
      {},
      { import_path: importPath },
      op,
      options.signal,
    );
    const answer = normalizeImportAnswer(validateBody(importAnswerSchema, json, op));
    logger.info({ graphId, importPath, jobId: answer.jobId }, 'ges import started');
    return answer;
  }

  async function getJobStatus(graphId: string, jobId: string, options: { signal?: AbortSignal } = {}): Promise<GesJob> {
    checkId('graph', graphId);
    if (jobId.trim() === '' || jobId === '.' || jobId === '..') {
      throw new ArchiverError(ErrorCodes.GesBadResponse, `GES returned an unusable job id ${JSON.stringify(jobId)}`);
    }
    const op = `the status of job ${jobId} of graph ${graphId}`;
    const { json } = await getJson(
      (p) => `/v2/${encodeURIComponent(p)}/graphs/${encodeURIComponent(graphId)}/jobs/${encodeURIComponent(jobId)}/status`,
      {},
      op,
      options.signal,
    );
    return normalizeJobStatus(validateBody(jobStatusSchema, json, op), jobId);
  }

  return { listBackups, getBackupFiles, projectId, importBackup, getJobStatus };
}
