import { Writable } from 'node:stream';
import { Agent } from 'undici';
import type { Config } from '../../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import { createGesClient, ListingIncompleteError, type GesClient, type GesClientDeps } from '../../../lib/ges/client.js';
import { createLogger, silentLogger } from '../../../lib/log.js';
import { createRetryPolicy } from '../../../lib/retry.js';
import { startStub, type Stub, type StubHandler, type StubReply, type StubRequest } from './stub-server.js';

const STATIC_TOKEN = 'static-token-0123456789';
const PASSWORD = 'correct-horse-battery-staple';
const HOUR = 3_600_000;
const T0 = Date.parse('2025-03-01T00:00:00Z');

const fastRetry = () => createRetryPolicy({ baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5000 });

let stub: Stub | undefined;
let agent: Agent;

beforeEach(() => {
  agent = new Agent();
});

afterEach(async () => {
  await stub?.close();
  stub = undefined;
  await agent.close();
});

async function serve(handler: StubHandler): Promise<Stub> {
  stub = await startStub(handler);
  return stub;
}

function tokenConfig(url: string, over: Partial<Config['ges']> = {}): Config['ges'] {
  return { endpoint: url, projectId: 'proj1', auth: { mode: 'token', token: STATIC_TOKEN }, requestTimeoutMs: 2000, ...over };
}

function iamConfig(url: string, over: Partial<Config['ges']> = {}): Config['ges'] {
  return {
    endpoint: url,
    projectId: undefined,
    auth: { mode: 'iam', iamEndpoint: url, username: 'archiver', password: PASSWORD, domain: 'example-domain', project: 'cn-north-4' },
    requestTimeoutMs: 2000,
    ...over,
  };
}

function client(config: Config['ges'], over: Partial<GesClientDeps> = {}): GesClient {
  return createGesClient({ config, logger: silentLogger(), retry: fastRetry(), dispatcher: agent, ...over });
}

async function caught(promise: Promise<unknown>): Promise<ArchiverError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ArchiverError) return err;
    throw err;
  }
  throw new Error('expected the promise to reject');
}

const isoMicros = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

function iamReply(token: string, issuedAt: number, opts: { ttlMs?: number; projectId?: string; omitExpiry?: boolean } = {}): StubReply {
  const t: Record<string, unknown> = {
    issued_at: isoMicros(issuedAt),
    methods: ['password'],
    project: { id: opts.projectId ?? 'projfromtoken', name: 'cn-north-4', domain: { id: 'd1', name: 'example-domain' } },
  };
  if (opts.omitExpiry !== true) t['expires_at'] = isoMicros(issuedAt + (opts.ttlMs ?? 24 * HOUR));
  return { status: 201, headers: { 'x-subject-token': token }, body: { token: t } };
}

const backup = (id: string, status = 'success') => ({ id, name: `n-${id}`, graph_id: 'g1', status, start_timestamp: 1_700_000_000_000, size: 1 });
const isIam = (r: StubRequest): boolean => r.method === 'POST' && r.path === '/v3/auth/tokens';
const gesRequests = (s: Stub): StubRequest[] => s.requests.filter((r) => !isIam(r));
const iamRequests = (s: Stub): StubRequest[] => s.requests.filter(isIam);

/** Serves `all` with offset/limit like GES, capping limit at `cap`. */
function listing(all: unknown[], opts: { cap?: number; withCount?: boolean } = {}): (req: StubRequest) => StubReply {
  return (req) => {
    const offset = Number(req.query.get('offset') ?? '0');
    const limit = Math.min(Number(req.query.get('limit') ?? '10'), opts.cap ?? 1000);
    const body: Record<string, unknown> = { backup_list: all.slice(offset, offset + limit) };
    if (opts.withCount !== false) body['backup_count'] = all.length;
    return { status: 200, body };
  };
}

describe('listBackups paging', () => {
  it('fetches every page with limit 100 and stops at backup_count', async () => {
    // Prepare
    const all = Array.from({ length: 250 }, (_, i) => backup(`b${i}`));
    const s = await serve(listing(all));

    // Act
    const result = await client(tokenConfig(s.url)).listBackups('g1');

    // Assess
    expect(result.map((b) => b.id)).toEqual(all.map((b) => b.id));
    expect(s.requests.map((r) => [r.path, r.query.get('offset'), r.query.get('limit')])).toEqual([
      ['/v2/proj1/graphs/g1/backups', '0', '100'],
      ['/v2/proj1/graphs/g1/backups', '100', '100'],
      ['/v2/proj1/graphs/g1/backups', '200', '100'],
    ]);
    expect(s.requests[0]?.headers['x-auth-token']).toBe(STATIC_TOKEN);
  });

  it('deduplicates ids repeated when new backups shift the pages, and lists again to find the ones the shift hid', async () => {
    // Prepare: two new backups appear at the front after the first page was served
    const all = Array.from({ length: 150 }, (_, i) => backup(`b${i}`));
    let served = 0;
    const s = await serve((req) => {
      if (served++ === 1) all.unshift(backup('new1'), backup('new2'));
      return listing(all)(req);
    });

    // Act
    const result = await client(tokenConfig(s.url)).listBackups('g1');

    // Assess: b98 and b99 came twice; the first pass missed new1 and new2 (152 = backup_count), the second found them
    const ids = result.map((b) => b.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(152);
    expect(ids).toEqual(expect.arrayContaining(['b149', 'new1', 'new2']));
    expect(s.requests.map((r) => r.query.get('offset'))).toEqual(['0', '100', '0', '100']);
  });

  it('fails with LISTING_INCOMPLETE, never a subset, when GES ignores offset and backup_count says more remain', async () => {
    // Prepare: every page is the first one
    const all = Array.from({ length: 250 }, (_, i) => backup(`b${i}`));
    const s = await serve(() => ({ status: 200, body: { backup_count: all.length, backup_list: all.slice(0, 100) } }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err).toBeInstanceOf(ListingIncompleteError);
    expect(err.code).toBe(ErrorCodes.ListingIncomplete);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('only 100 distinct backups of graph g1 although its backup_count is 250');
    expect(err.details).toMatchObject({ graphId: 'g1', listed: 100, backupCount: 250, stoppedAt: 100 });
    expect((err as ListingIncompleteError).partial.map((b) => b.id)).toEqual(all.slice(0, 100).map((b) => b.id));
    // one pass of two pages, then two more passes that stop at their first page
    expect(s.requests.map((r) => r.query.get('offset'))).toEqual(['0', '100', '0', '0']);
  });

  it('follows a server that caps the page size and sends no backup_count', async () => {
    // Prepare
    const all = Array.from({ length: 25 }, (_, i) => backup(`b${i}`));
    const s = await serve(listing(all, { cap: 10, withCount: false }));

    // Act
    const result = await client(tokenConfig(s.url)).listBackups('g1');

    // Assess
    expect(result).toHaveLength(25);
    expect(s.requests.map((r) => r.query.get('offset'))).toEqual(['0', '10', '20']);
  });

  it('stops when a page brings no new id (a server repeating itself)', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: { backup_list: [backup('b1'), backup('b2')] } }));

    // Act
    const result = await client(tokenConfig(s.url)).listBackups('g1');

    // Assess
    expect(result.map((b) => b.id)).toEqual(['b1', 'b2']);
    expect(s.requests).toHaveLength(2);
  });

  it('returns an empty list for a graph without backups', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: { backup_count: 0, backup_list: [] } }));

    // Act
    const result = await client(tokenConfig(s.url)).listBackups('g1');

    // Assess
    expect(result).toEqual([]);
    expect(s.requests).toHaveLength(1);
  });

  it('names the field of a page that fails validation, without retrying', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: { backup_list: [{ id: 'b1', status: 'success', size: 'huge' }] } }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesBadResponse);
    expect(err.message).toContain('backup_list[0].size');
    expect(s.requests).toHaveLength(1);
  });
});

describe('getBackupFiles', () => {
  it('asks for the backup by query and stamps the answer with the injected clock', async () => {
    // Prepare
    const s = await serve(() => ({
      status: 200,
      body: { bucket: 'bkt', files: [{ name: 'a.bin', size: '3', download_link: 'http://127.0.0.1:1/a.bin?Signature=x%2B', link_expired_time: '2025-03-01T01:00:00Z' }] },
    }));

    // Act
    const result = await client(tokenConfig(s.url), { now: () => T0 }).getBackupFiles('g1', 'b 1');

    // Assess
    expect(result).toEqual({
      bucket: 'bkt',
      files: [{ name: 'a.bin', sizeKb: 3, downloadLink: 'http://127.0.0.1:1/a.bin?Signature=x%2B', linkExpiredTime: '2025-03-01T01:00:00Z' }],
      receivedAt: T0,
    });
    expect(s.requests[0]?.path).toBe('/v2/proj1/graphs/g1/backup-files');
    expect(s.requests[0]?.query.get('backup_id')).toBe('b 1');
  });

  it('does not retry GES.7024 and says which backup is missing', async () => {
    // Prepare
    const s = await serve(() => ({ status: 400, headers: { 'x-request-id': 'rq-7' }, body: { error_code: 'GES.7024', error_msg: 'The graph backup does not exist or has been deleted.' } }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).getBackupFiles('g1', 'b1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.BackupNotFound);
    expect(err.message).toBe('GES refused backup-files for graph g1 backup b1: GES.7024 The graph backup does not exist or has been deleted.');
    expect(err.details).toMatchObject({ status: 400, remoteCode: 'GES.7024', requestId: 'rq-7' });
    expect(s.requests).toHaveLength(1);
  });

  it('treats a 200 carrying a v1 errorCode as the error it is', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: { errorCode: 'GES.7000', errorMessage: 'The graph does not exist or has been deleted.' } }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).getBackupFiles('g1', 'b1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GraphNotFound);
  });

  it('refuses a dot-segment id instead of letting the URL parser resolve it', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: {} }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).getBackupFiles('..', 'b1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.ArgsInvalid);
    expect(s.requests).toHaveLength(0);
  });
});

describe('retries', () => {
  it('retries a 503 and succeeds', async () => {
    // Prepare
    let n = 0;
    const s = await serve(() => (n++ === 0 ? { status: 503, body: 'Service Unavailable' } : { status: 200, body: { files: [] } }));

    // Act
    const result = await client(tokenConfig(s.url)).getBackupFiles('g1', 'b1');

    // Assess
    expect(result.files).toEqual([]);
    expect(s.requests).toHaveLength(2);
  });

  it('retries GES.7005 sent with a 408', async () => {
    // Prepare
    let n = 0;
    const s = await serve(() => (n++ === 0
      ? { status: 408, body: { error_code: 'GES.7005', error_msg: 'The underlying service of the graph engine is unavailable.' } }
      : { status: 200, body: { files: [] } }));

    // Act
    await client(tokenConfig(s.url)).getBackupFiles('g1', 'b1');

    // Assess
    expect(s.requests).toHaveLength(2);
  });

  it('waits as long as Retry-After asks on a 429', async () => {
    // Prepare
    const at: number[] = [];
    const s = await serve(() => {
      at.push(Date.now());
      return at.length === 1
        ? { status: 429, headers: { 'retry-after': '0.4' }, body: { error_code: 'APIGW.0308', error_msg: 'The throttling threshold has been reached' } }
        : { status: 200, body: { files: [] } };
    });

    // Act
    await client(tokenConfig(s.url)).getBackupFiles('g1', 'b1');

    // Assess: the policy's own backoff is at most 50 ms here
    expect(at).toHaveLength(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(380);
  });

  it('gives up after the policy\'s attempts with the last retryable error', async () => {
    // Prepare
    const s = await serve(() => ({ status: 500, body: { error_code: 'GES.7006', error_msg: 'The underlying graph engine has internal error.' } }));
    const retry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5000 });

    // Act
    const err = await caught(client(tokenConfig(s.url), { retry }).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesUnavailable);
    expect(err.retryable).toBe(true);
    expect(s.requests).toHaveLength(3);
  });

  it('times a slow request out and retries it', async () => {
    // Prepare
    let n = 0;
    const s = await serve(() => (n++ === 0 ? { status: 200, body: { files: [] }, delayMs: 1000 } : { status: 200, body: { files: [] } }));
    const started = Date.now();

    // Act
    await client(tokenConfig(s.url, { requestTimeoutMs: 150 })).getBackupFiles('g1', 'b1');

    // Assess
    expect(s.requests).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('reports a request that always times out as retryable GES_UNAVAILABLE', async () => {
    // Prepare
    const s = await serve(() => ({ status: 200, body: { files: [] }, delayMs: 600 }));
    const retry = createRetryPolicy({ maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5000 });

    // Act
    const err = await caught(client(tokenConfig(s.url, { requestTimeoutMs: 100 }), { retry }).getBackupFiles('g1', 'b1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesUnavailable);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('within 100 ms');
    expect(s.requests).toHaveLength(2);
  });

  it('retries a dropped connection', async () => {
    // Prepare
    let n = 0;
    const s = await serve(() => (n++ === 0 ? { status: 200, destroy: true } : { status: 200, body: { files: [] } }));

    // Act
    await client(tokenConfig(s.url)).getBackupFiles('g1', 'b1');

    // Assess
    expect(s.requests).toHaveLength(2);
  });

  it('retries a refused connection and then reports GES_UNAVAILABLE', async () => {
    // Prepare: a port nobody listens on
    const s = await serve(() => ({ status: 200 }));
    const url = s.url;
    await s.close();
    stub = undefined;
    const retry = createRetryPolicy({ maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5000 });
    const retried: unknown[] = [];
    const c = client(tokenConfig(url), {
      retry: (op, opts) => retry(op, { ...opts, onRetry: (e) => { retried.push(e.error); opts?.onRetry?.(e); } }),
    });

    // Act
    const err = await caught(c.listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesUnavailable);
    expect(err.details?.['networkCode']).toBe('ECONNREFUSED');
    expect(retried).toHaveLength(1);
  });

  it('stops at once, as ABORTED, when the caller\'s signal fires', async () => {
    // Prepare
    const controller = new AbortController();
    // Abort once the request has reached the server (not on a timer: under load the timer
    // could fire before the request is even sent).
    const s = await serve(() => {
      setImmediate(() => controller.abort());
      return { status: 200, body: { files: [] }, delayMs: 1000 };
    });

    // Act
    const err = await caught(client(tokenConfig(s.url)).getBackupFiles('g1', 'b1', { signal: controller.signal }));

    // Assess
    expect(err.code).toBe(ErrorCodes.Aborted);
    expect(s.requests).toHaveLength(1);
  });
});

describe('static token auth', () => {
  it('fails with GES_AUTH_FAILED at the first 401, without calling IAM, and never shows the token', async () => {
    // Prepare
    const s = await serve(() => ({ status: 401, body: { error_code: 'APIGW.0307', error_msg: 'The token must be updated.' } }));

    // Act
    const err = await caught(client(tokenConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(err.message).toContain('APIGW.0307');
    expect(err.message).toContain('GES_AUTH_TOKEN');
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(STATIC_TOKEN);
    expect(s.requests).toHaveLength(1);
  });

  it('uses the configured project id', async () => {
    // Prepare
    const s = await serve(() => ({ status: 500 }));

    // Act
    const id = await client(tokenConfig(s.url)).projectId();

    // Assess
    expect(id).toBe('proj1');
    expect(s.requests).toHaveLength(0);
  });
});

describe('IAM token auth', () => {
  function iamAndGes(tokens: () => StubReply, ges: StubHandler = () => ({ status: 200, body: { backup_list: [] } })): StubHandler {
    return (req) => (isIam(req) ? tokens() : ges(req));
  }

  it('asks IAM once for a project-scoped token and sends it to GES, with the project id from the token', async () => {
    // Prepare
    const s = await serve(iamAndGes(() => iamReply('iam-token-1', T0)));
    const c = client(iamConfig(s.url), { now: () => T0 });

    // Act
    await c.listBackups('g1');
    await c.getBackupFiles('g1', 'b1').catch(() => undefined);
    const projectId = await c.projectId();

    // Assess
    const iam = iamRequests(s);
    expect(iam).toHaveLength(1);
    expect(iam[0]?.query.get('nocatalog')).toBe('true');
    expect(JSON.parse(iam[0]?.body ?? '{}')).toEqual({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'archiver', password: PASSWORD, domain: { name: 'example-domain' } } } },
        scope: { project: { name: 'cn-north-4' } },
      },
    });
    expect(projectId).toBe('projfromtoken');
    expect(gesRequests(s).map((r) => [r.path, r.headers['x-auth-token']])).toEqual([
      ['/v2/projfromtoken/graphs/g1/backups', 'iam-token-1'],
      ['/v2/projfromtoken/graphs/g1/backup-files', 'iam-token-1'],
    ]);
  });

  it('prefers the configured project id over the token\'s', async () => {
    // Prepare
    const s = await serve(iamAndGes(() => iamReply('t', T0)));

    // Act
    await client(iamConfig(s.url, { projectId: 'cfgproj' }), { now: () => T0 }).listBackups('g1');

    // Assess
    expect(gesRequests(s)[0]?.path).toBe('/v2/cfgproj/graphs/g1/backups');
  });

  it('keeps the token until 5 minutes before expires_at, then renews it', async () => {
    // Prepare
    let issued = 0;
    let clock = T0;
    const s = await serve(iamAndGes(() => iamReply(`tok-${++issued}`, clock)));
    const c = client(iamConfig(s.url), { now: () => clock });

    // Act
    await c.listBackups('g1');
    clock = T0 + 24 * HOUR - 6 * 60_000;
    await c.listBackups('g1');
    clock = T0 + 24 * HOUR - 4 * 60_000;
    await c.listBackups('g1');

    // Assess
    expect(iamRequests(s)).toHaveLength(2);
    expect(gesRequests(s).map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-1', 'tok-2']);
  });

  it('treats a token without expires_at as good for one hour', async () => {
    // Prepare
    let issued = 0;
    let clock = T0;
    const s = await serve(iamAndGes(() => iamReply(`tok-${++issued}`, clock, { omitExpiry: true })));
    const c = client(iamConfig(s.url), { now: () => clock });

    // Act
    await c.listBackups('g1');
    clock = T0 + 54 * 60_000;
    await c.listBackups('g1');
    clock = T0 + 56 * 60_000;
    await c.listBackups('g1');

    // Assess
    expect(gesRequests(s).map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-1', 'tok-2']);
  });

  it('fetches one token for many concurrent requests', async () => {
    // Prepare
    let issued = 0;
    const s = await serve((req) => (isIam(req) ? { ...iamReply(`tok-${++issued}`, T0), delayMs: 50 } : { status: 200, body: { backup_list: [] } }));
    const c = client(iamConfig(s.url), { now: () => T0 });

    // Act
    await Promise.all(Array.from({ length: 5 }, (_, i) => c.listBackups(`g${i}`)));

    // Assess
    expect(iamRequests(s)).toHaveLength(1);
    expect(gesRequests(s)).toHaveLength(5);
  });

  it('renews the token once on 401 APIGW.0307 and repeats the request', async () => {
    // Prepare
    let issued = 0;
    const s = await serve(iamAndGes(
      () => iamReply(`tok-${++issued}`, T0),
      (req) => (req.headers['x-auth-token'] === 'tok-1'
        ? { status: 401, body: { error_msg: 'The token must be updated.', error_code: 'APIGW.0307', request_id: 'r1' } }
        : { status: 200, body: { backup_count: 1, backup_list: [backup('b1')] } }),
    ));

    // Act
    const result = await client(iamConfig(s.url), { now: () => T0 }).listBackups('g1');

    // Assess
    expect(result.map((b) => b.id)).toEqual(['b1']);
    expect(iamRequests(s)).toHaveLength(2);
    expect(gesRequests(s).map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-2']);
  });

  it('fails with GES_AUTH_FAILED when GES refuses the renewed token too', async () => {
    // Prepare
    let issued = 0;
    const s = await serve(iamAndGes(
      () => iamReply(`tok-${++issued}`, T0),
      () => ({ status: 401, body: { error_code: 'APIG.0301', error_msg: 'Incorrect IAM authentication information: decrypt token fail' } }),
    ));

    // Act
    const err = await caught(client(iamConfig(s.url), { now: () => T0 }).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ remoteCode: 'APIG.0301', renewed: true, status: 401 });
    expect(iamRequests(s)).toHaveLength(2);
    expect(gesRequests(s)).toHaveLength(2);
  });

  it('reports a wrong password as GES_AUTH_FAILED without retrying and without the password', async () => {
    // Prepare
    const s = await serve(() => ({
      status: 401,
      body: { error: { code: 401, message: 'The username or password is wrong.', title: 'Unauthorized' } },
    }));

    // Act
    const err = await caught(client(iamConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(err.message).toContain('IAM refused the token request for user archiver in domain example-domain');
    expect(err.message).toContain('The username or password is wrong.');
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(PASSWORD);
    expect(s.requests).toHaveLength(1);
  });

  it('asks IAM once for a wrong password, however many graphs and concurrent callers, and remembers the refusal', async () => {
    // Prepare: IAM answers slowly, so the first five callers are all waiting on the same login
    const s = await serve(() => ({
      status: 401, delayMs: 50,
      body: { error: { code: 401, message: 'The username or password is wrong.', title: 'Unauthorized' } },
    }));
    const refusals: ArchiverError[] = [];
    const c = client(iamConfig(s.url), { now: () => T0, onAuthFailure: (e) => refusals.push(e) });

    // Act
    const concurrent = await Promise.all(Array.from({ length: 5 }, (_, i) => caught(c.listBackups(`g${i}`))));
    const later: ArchiverError[] = [];
    for (let i = 0; i < 8; i++) later.push(await caught(i % 2 === 0 ? c.listBackups(`h${i}`) : c.getBackupFiles(`h${i}`, 'b1')));

    // Assess
    expect(iamRequests(s)).toHaveLength(1);
    expect(gesRequests(s)).toHaveLength(0);
    for (const err of [...concurrent, ...later]) {
      expect(err.code).toBe(ErrorCodes.GesAuthFailed);
      expect(err.message).toBe(concurrent[0]?.message);
    }
    expect(concurrent[0]?.message).toContain('IAM is not asked again with these credentials for 15 minutes');
    expect(refusals).toHaveLength(13);
  });

  it('asks IAM again once the refusal hold is over', async () => {
    // Prepare
    let clock = T0;
    const s = await serve(() => ({ status: 401, body: { error: { code: 401, message: 'The username or password is wrong.', title: 'Unauthorized' } } }));
    const c = client(iamConfig(s.url), { now: () => clock });

    // Act
    await caught(c.listBackups('g1'));
    clock = T0 + 14 * 60_000;
    await caught(c.listBackups('g1'));
    clock = T0 + 15 * 60_000;
    await caught(c.listBackups('g1'));

    // Assess
    expect(iamRequests(s)).toHaveLength(2);
  });

  it('does not remember IAM being unavailable: the next caller logs in again', async () => {
    // Prepare
    let calls = 0;
    const s = await serve(iamAndGes(() => (++calls === 1 ? { status: 503, body: 'busy' } : iamReply('tok', T0))));
    const c = client(iamConfig(s.url), { now: () => T0, retry: createRetryPolicy({ maxAttempts: 1 }) });

    // Act
    const first = await caught(c.listBackups('g1'));
    await c.listBackups('g1');

    // Assess
    expect(first.code).toBe(ErrorCodes.GesUnavailable);
    expect(iamRequests(s)).toHaveLength(2);
  });

  it('never lets IAM echo the password into a message', async () => {
    // Prepare
    const s = await serve(() => ({ status: 400, body: { error_code: 'IAM.0001', error_msg: `bad credentials ${PASSWORD}` } }));

    // Act
    const err = await caught(client(iamConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(PASSWORD);
  });

  it('retries IAM when it is unavailable', async () => {
    // Prepare
    let calls = 0;
    const s = await serve(iamAndGes(() => (++calls === 1 ? { status: 503, body: 'busy' } : iamReply('tok', T0))));

    // Act
    await client(iamConfig(s.url), { now: () => T0 }).listBackups('g1');

    // Assess
    expect(iamRequests(s)).toHaveLength(2);
    expect(gesRequests(s)).toHaveLength(1);
  });

  it('fails clearly when IAM answers 201 without X-Subject-Token', async () => {
    // Prepare
    const s = await serve(() => ({ status: 201, body: { token: {} } }));

    // Act
    const err = await caught(client(iamConfig(s.url)).listBackups('g1'));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesBadResponse);
    expect(err.message).toContain('X-Subject-Token');
  });

  it('logs one debug line per request, without the token or the password', async () => {
    // Prepare
    const lines: string[] = [];
    const destination = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
    const logger = createLogger({ level: 'debug', destination });
    let issued = 0;
    const s = await serve(iamAndGes(
      () => iamReply(`secret-iam-token-${++issued}`, T0),
      (req) => (req.headers['x-auth-token'] === 'secret-iam-token-1'
        ? { status: 401, body: { error_code: 'APIGW.0307', error_msg: 'The token must be updated.' } }
        : { status: 200, body: { files: [{ name: 'a', download_link: 'http://127.0.0.1:9/a?Signature=SIG' }] } }),
    ));

    // Act
    await client(iamConfig(s.url), { logger, now: () => T0 }).getBackupFiles('g1', 'b1');

    // Assess
    const all = lines.join('');
    const requestLines = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'ges request');
    expect(requestLines).toHaveLength(4);
    expect(requestLines[0]).toMatchObject({ method: 'POST', path: '/v3/auth/tokens', status: 201 });
    expect(requestLines[1]).toMatchObject({ method: 'GET', path: '/v2/projfromtoken/graphs/g1/backup-files', status: 401 });
    expect(typeof requestLines[1]?.['durationMs']).toBe('number');
    expect(all).not.toContain('secret-iam-token');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('SIG');
  });
});
