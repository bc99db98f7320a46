import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Config } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { createGesClient } from '../../lib/ges/client.js';
import { waitForJob, type JobPoll } from '../../lib/ges/jobs.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { DEFAULT_ACCESS_KEY, DEFAULT_USER, startEmulator, type Emulator, type EmulatorOptions } from '../emulator/index.js';

// The GES client against the GES + IAM + OBS emulator: the token flow, paging and links,
// over real HTTP. Needs no S3.

const GRAPH = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const STATIC = 'static-token-for-tests';

let emulator: Emulator | undefined;
let agent: Agent;

beforeEach(() => {
  agent = new Agent();
});

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  await agent.close();
});

async function start(opts: Partial<EmulatorOptions> & { backups?: number } = {}): Promise<Emulator> {
  const backups = Array.from({ length: opts.backups ?? 3 }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    files: [{ name: 'meta.xml', bytes: 300 + i }, { name: 'data.bin', bytes: 5000 }],
  }));
  emulator = await startEmulator({ graphs: [{ id: GRAPH, backups }], staticTokens: [STATIC], ...opts });
  return emulator;
}

function iamConfig(em: Emulator, password: string = DEFAULT_USER.password): Config['ges'] {
  return {
    endpoint: em.gesEndpoint,
    projectId: undefined,
    auth: { mode: 'iam', iamEndpoint: em.iamEndpoint, username: DEFAULT_USER.name, password, domain: DEFAULT_USER.domain, project: em.projectName },
    requestTimeoutMs: 5000,
  };
}

function tokenConfig(em: Emulator): Config['ges'] {
  return { endpoint: em.gesEndpoint, projectId: em.projectId, auth: { mode: 'token', token: STATIC }, requestTimeoutMs: 5000 };
}

function akskConfig(em: Emulator, keys: { accessKey: string; secretKey: string; securityToken?: string } = DEFAULT_ACCESS_KEY): Config['ges'] {
  return {
    endpoint: em.gesEndpoint,
    projectId: em.projectId,
    auth: { mode: 'aksk', accessKey: keys.accessKey, secretKey: keys.secretKey, securityToken: keys.securityToken },
    requestTimeoutMs: 5000,
  };
}

function client(config: Config['ges'], now?: () => number): ReturnType<typeof createGesClient> {
  return createGesClient({
    config,
    logger: silentLogger(),
    retry: createRetryPolicy({ baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5000 }),
    dispatcher: agent,
    ...(now === undefined ? {} : { now }),
  });
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

describe('GES client against the emulator', () => {
  it('gets an IAM token once and lists every backup across capped pages', async () => {
    // Prepare
    const em = await start({ backups: 230, pageLimitMax: 50 });
    const c = client(iamConfig(em));

    // Act
    const backups = await c.listBackups(GRAPH);
    const projectId = await c.projectId();

    // Assess
    expect(backups).toHaveLength(230);
    expect(new Set(backups.map((b) => b.id)).size).toBe(230);
    expect(backups.every((b) => b.graphId === GRAPH && b.status === 'success' && typeof b.startTimestamp === 'number')).toBe(true);
    expect(projectId).toBe(em.projectId);
    expect(em.stats.tokenRequests).toBe(1);
    expect(em.stats.listRequests).toBe(5);
  });

  it('fails with LISTING_INCOMPLETE instead of returning the first page when GES ignores offset', async () => {
    // Prepare
    const em = await start({ backups: 250 });
    em.faults.ignoreListOffset();

    // Act
    const err = await caught(client(tokenConfig(em)).listBackups(GRAPH));

    // Assess
    expect(err.code).toBe(ErrorCodes.ListingIncomplete);
    expect(err.message).toContain(`only 100 distinct backups of graph ${GRAPH} although its backup_count is 250`);
    expect(em.stats.listRequests).toBe(4);
  });

  it('gets links that download the exact file bytes', async () => {
    // Prepare
    const em = await start({ fileSizeAsString: true });
    const backupId = '00000000-0000-4000-8000-000000000001';

    // Act
    const result = await client(iamConfig(em)).getBackupFiles(GRAPH, backupId);
    const data = result.files.find((f) => f.name === 'data.bin');
    const response = await request(data?.downloadLink ?? 'http://invalid', { dispatcher: agent });
    const bytes = Buffer.from(await response.body.arrayBuffer());

    // Assess
    expect(result.files.map((f) => f.name).sort()).toEqual(['data.bin', 'meta.xml']);
    expect(result.bucket).toBeDefined();
    expect(data?.sizeKb).toBe(5);
    expect(data?.linkExpiredTime).toBeDefined();
    expect(response.statusCode).toBe(200);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(em.fileSha256(GRAPH, backupId, 'data.bin'));
  });

  it('renews the IAM token once after the emulator revokes it', async () => {
    // Prepare
    const em = await start();
    const c = client(iamConfig(em));
    await c.listBackups(GRAPH);
    em.faults.invalidateTokens();

    // Act
    const backups = await c.listBackups(GRAPH);

    // Assess
    expect(backups).toHaveLength(3);
    expect(em.stats.tokenRequests).toBe(2);
  });

  it('fails with GES_AUTH_FAILED when a revoked static token is used', async () => {
    // Prepare
    const em = await start();
    em.faults.invalidateTokens({ includeStatic: true });

    // Act
    const err = await caught(client(tokenConfig(em)).listBackups(GRAPH));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(em.stats.tokenRequests).toBe(0);
  });

  it('refuses a wrong password with GES_AUTH_FAILED and no password in the message', async () => {
    // Prepare
    const em = await start();

    // Act
    const err = await caught(client(iamConfig(em, 'not-the-password')).listBackups(GRAPH));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesAuthFailed);
    expect(err.message).not.toContain('not-the-password');
    expect(em.stats.tokenRequests).toBe(1);
  });

  it('retries injected 503 and GES.7005 faults on the links call', async () => {
    // Prepare
    const statuses: number[] = [];
    const em = await start({ onRequest: (e) => { if (e.path.endsWith('/backup-files')) statuses.push(e.status); } });
    em.faults.failGes('links', { status: 503, body: 'busy' }, 1);
    em.faults.failGes('links', { status: 408, body: { error_code: 'GES.7005', error_msg: 'The underlying service of the graph engine is unavailable.' } }, 1);

    // Act
    const result = await client(tokenConfig(em)).getBackupFiles(GRAPH, '00000000-0000-4000-8000-000000000000');

    // Assess
    expect(result.files).toHaveLength(2);
    expect(statuses).toEqual([503, 408, 200]);
  });

  it('maps an unknown backup to BACKUP_NOT_FOUND and an unknown graph to GRAPH_NOT_FOUND', async () => {
    // Prepare
    const em = await start();
    const c = client(tokenConfig(em));

    // Act
    const noBackup = await caught(c.getBackupFiles(GRAPH, 'ffffffff-0000-4000-8000-000000000000'));
    const noGraph = await caught(c.listBackups('9b9a05c2-0000-4000-8000-00000000dead'));

    // Assess
    expect(noBackup.code).toBe(ErrorCodes.BackupNotFound);
    expect(noBackup.details?.['requestId']).toEqual(expect.any(String));
    expect(noGraph.code).toBe(ErrorCodes.GraphNotFound);
  });

  describe('backup import and job status', () => {
    const FAST = { timeoutMs: 10_000, pollIntervalMs: 10 };

    it('starts an import with the import_path as given and follows the job to success, reporting every poll', async () => {
      // Prepare
      const em = await start({ importPollsUntilDone: 3 });
      const c = client(iamConfig(em));
      const polls: JobPoll[] = [];

      // Act
      const { jobId } = await c.importBackup(GRAPH, 'restore-bucket/ges/b1');
      const job = await waitForJob({ ges: c, logger: silentLogger() }, { graphId: GRAPH, jobId, what: 'the import' }, { ...FAST, onPoll: (p) => polls.push(p) });

      // Assess
      expect(em.stats.imports).toEqual([{ graphId: GRAPH, importPath: 'restore-bucket/ges/b1', jobId }]);
      expect(job).toMatchObject({ jobId, status: 'success', progress: 100 });
      expect(polls.map((p) => [p.polls, p.job.status])).toEqual([[1, 'pending'], [2, 'running'], [3, 'success']]);
    });

    it('ends with IMPORT_FAILED naming GES\'s fail_reason when the job fails', async () => {
      // Prepare
      const em = await start({ importPollsUntilDone: 2 });
      em.faults.failImport('The backup files were modified.');
      const c = client(tokenConfig(em));
      const { jobId } = await c.importBackup(GRAPH, 'b/p');

      // Act
      const err = await caught(waitForJob({ ges: c, logger: silentLogger() }, { graphId: GRAPH, jobId, what: 'the import of b/p' }, FAST));

      // Assess
      expect(err.code).toBe(ErrorCodes.ImportFailed);
      expect(err.message).toContain('The backup files were modified.');
      expect(err.details).toMatchObject({ jobId, lastStatus: 'failed' });
    });

    it('gives up with IMPORT_FAILED after the time limit, saying the job may still be running', async () => {
      // Prepare
      const em = await start({ importPollsUntilDone: 1000 });
      const c = client(tokenConfig(em));
      const { jobId } = await c.importBackup(GRAPH, 'b/p');

      // Act
      const err = await caught(waitForJob({ ges: c, logger: silentLogger() }, { graphId: GRAPH, jobId, what: 'the import' }, { timeoutMs: 200, pollIntervalMs: 20 }));

      // Assess
      expect(err.code).toBe(ErrorCodes.ImportFailed);
      expect(err.details).toMatchObject({ reason: 'timeout', lastStatus: 'running' });
      expect(err.message).toMatch(/may still be running/);
      expect(em.stats.jobStatusRequests).toBeGreaterThan(2);
      expect(em.stats.jobStatusRequests).toBeLessThan(20);
    });

    it('resends an import that was throttled, but never one GES may have acted on (503); retries job status on 503', async () => {
      // Prepare
      const em = await start();
      const c = client(tokenConfig(em));
      em.faults.failGes('import', { status: 429, body: { error_code: 'APIGW.0308', error_msg: 'throttled' } });

      // Act
      const throttledThenOk = await c.importBackup(GRAPH, 'b/p');
      em.faults.failGes('import', { status: 503 });
      const unavailable = await caught(c.importBackup(GRAPH, 'b/q'));
      em.faults.failGes('job', { status: 503 }, 2);
      const status = await c.getJobStatus(GRAPH, throttledThenOk.jobId);

      // Assess
      expect(em.stats.imports.map((i) => i.importPath)).toEqual(['b/p']);
      expect(unavailable.code).toBe(ErrorCodes.GesUnavailable);
      expect(unavailable.retryable).toBe(false);
      expect(unavailable.message).toMatch(/check the graph's jobs in the GES console/);
      expect(status.status).toBe('pending');
    });

    it('maps a refused import path to GES_REQUEST_REJECTED with GES\'s code, and an unknown job to one too', async () => {
      // Prepare
      const em = await start();
      const c = client(tokenConfig(em));

      // Act
      const badPath = await caught(c.importBackup(GRAPH, 'obs://b/p/'));
      const noJob = await caught(c.getJobStatus(GRAPH, 'ffffffffffffffffffffffffffffffff'));

      // Assess
      expect(badPath.code).toBe(ErrorCodes.GesRequestRejected);
      expect(badPath.details).toMatchObject({ remoteCode: 'GES.7011' });
      expect(noJob.code).toBe(ErrorCodes.GesRequestRejected);
      expect(noJob.details).toMatchObject({ remoteCode: 'GES.7007' });
    });
  });
  describe('AK/SK signing (SDK-HMAC-SHA256)', () => {
    it('lists, gets links and starts an import with signed requests only: no token, no IAM', async () => {
      // Prepare
      const em = await start({ backups: 120, pageLimitMax: 50 });
      const c = client(akskConfig(em));

      // Act
      const backups = await c.listBackups(GRAPH);
      const links = await c.getBackupFiles(GRAPH, '00000000-0000-4000-8000-000000000000');
      const job = await c.importBackup(GRAPH, 'bucket/restored');

      // Assess: 3 list pages, one links call, one import; all signed and accepted
      expect(backups).toHaveLength(120);
      expect(links.files).toHaveLength(2);
      expect(em.stats.imports).toEqual([{ graphId: GRAPH, importPath: 'bucket/restored', jobId: job.jobId }]);
      expect(em.stats).toMatchObject({ signedRequests: 5, refusedSignatures: 0, tokenHeaderRequests: 0, tokenRequests: 0 });
    });

    it('sends a temporary AK/SK\'s security token', async () => {
      // Prepare
      const temporary = { accessKey: 'TEMPAK00000000000001', secretKey: 'temporary-sk', securityToken: 'sts-security-token' };
      const em = await start({ accessKeys: [temporary] });

      // Act
      const backups = await client(akskConfig(em, temporary)).listBackups(GRAPH);
      const without = await caught(client(akskConfig(em, { ...temporary, securityToken: undefined })).listBackups(GRAPH));

      // Assess
      expect(backups).toHaveLength(3);
      expect(without.code).toBe(ErrorCodes.GesAuthFailed);
      expect(em.stats.signedRequests).toBe(1);
    });

    it('refuses a wrong SK once: GES_AUTH_FAILED naming the variables, never the SK, and no second signed request', async () => {
      // Prepare
      const em = await start();
      const c = client(akskConfig(em, { ...DEFAULT_ACCESS_KEY, secretKey: 'wrong-secret-key' }));

      // Act: three concurrent callers, then two later ones
      const first = await Promise.all([c.listBackups(GRAPH), c.listBackups(GRAPH), c.getBackupFiles(GRAPH, '00000000-0000-4000-8000-000000000001')]
        .map((p) => caught(p)));
      const later = await caught(c.getBackupFiles(GRAPH, '00000000-0000-4000-8000-000000000000'));
      const post = await caught(c.importBackup(GRAPH, 'bucket/x'));

      // Assess
      for (const err of [...first, later, post]) {
        expect(err.code).toBe(ErrorCodes.GesAuthFailed);
        expect(err.retryable).toBe(false);
      }
      const [err] = first;
      expect(err?.message).toMatch(/^GES refused the AK\/SK signature for .*: APIGW\.0301 Incorrect IAM authentication information: verify aksk signature fail\. Check HWC_AK and HWC_SK/);
      expect(err?.message).toMatch(/Nothing more is signed with this AK\/SK for 15 minutes/);
      expect(JSON.stringify(err?.details)).not.toContain('wrong-secret-key');
      expect(err?.message).not.toContain('wrong-secret-key');
      expect(err?.details).toMatchObject({ authMode: 'aksk', status: 401, remoteCode: 'APIGW.0301' });
      expect(em.stats).toMatchObject({ refusedSignatures: 1, signedRequests: 0, importRequests: 0 });
    });

    it('is refused when the local clock is 20 minutes behind, and says so', async () => {
      // Prepare
      const em = await start();
      const c = client(akskConfig(em), () => Date.now() - 20 * 60_000);

      // Act
      const err = await caught(c.listBackups(GRAPH));

      // Assess
      expect(err.code).toBe(ErrorCodes.GesAuthFailed);
      expect(err.details?.['remoteMessage']).toMatch(/signature expired/);
      expect(err.message).toMatch(/This machine's clock is 20 minutes behind the gateway's/);
      expect(em.stats.refusedSignatures).toBe(1);
    });

    it('is refused when the gateway\'s clock is 16 minutes ahead, and accepted at 14', async () => {
      // Prepare
      let skew = 16 * 60_000;
      const em = await start({ gatewayClock: () => Date.now() + skew });

      // Act
      const err = await caught(client(akskConfig(em)).listBackups(GRAPH));
      skew = 14 * 60_000;
      const backups = await client(akskConfig(em)).listBackups(GRAPH);

      // Assess
      expect(err.message).toMatch(/clock is 16 minutes behind/);
      expect(backups).toHaveLength(3);
    });
  });
});
