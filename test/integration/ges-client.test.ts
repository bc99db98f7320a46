import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Config } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { createGesClient, type GesClient } from '../../lib/ges/client.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { DEFAULT_USER, startEmulator, type Emulator, type EmulatorOptions } from '../emulator/index.js';

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

function client(config: Config['ges']): GesClient {
  return createGesClient({
    config,
    logger: silentLogger(),
    retry: createRetryPolicy({ baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5000 }),
    dispatcher: agent,
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
});
