import type { Context } from 'aws-lambda';
import { resetRuntime } from '../../functions/lib/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listKeys, s3Client, s3Endpoint } from '../support/aws.js';
import { runCli, tokenEnv, useLocalS3 } from '../support/cli.js';

// Ids the one rule (lib/ids.ts) allows that are not UUID-like: '_' and '.', and 100 characters.
const G = 'graph_1.v2';
const B = `b.${'0123456789'.repeat(9)}_x`.slice(0, 100);
const TOKEN = 'ids-token';

function context(): Context {
  return { functionName: 'test-fn', awsRequestId: 'req-ids', getRemainingTimeInMillis: () => 600_000 } as unknown as Context;
}

describe('one id rule for the manifest, the CLI and the Lambda', () => {
  const s3 = s3Client();
  let emulator: Emulator;
  let bucket: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    emulator = await startEmulator({
      staticTokens: [TOKEN],
      graphs: [{ id: G, backups: [{ id: B, name: 'b', files: [{ name: 'metadata.xml', bytes: 1000 }] }] }],
    });
    bucket = await createTestBucket('ids');
    useLocalS3();
  });

  afterAll(async () => {
    resetRuntime();
    process.env = saved;
    await emulator.close();
    s3.destroy();
  });

  it('archives the backup by hand from the CLI', async () => {
    // Act
    const result = await runCli(['archive', '--graph', G, '--backup', B, '--json'], { ...tokenEnv(emulator, bucket, TOKEN), ARCHIVE_PREFIX: 'cli/' });

    // Assess
    expect(result.code).toBe(0);
    expect(await listKeys(bucket, `cli/${G}/${B}/`)).toContain(`cli/${G}/${B}/manifest.json`);
  });

  it('archives the same backup from the archiveBackup Lambda event, and refuses ".." naming the field', async () => {
    // Prepare
    Object.assign(process.env, { ...tokenEnv(emulator, bucket, TOKEN), ARCHIVE_PREFIX: 'lambda/', AWS_ENDPOINT_URL_S3: s3Endpoint() });
    delete process.env['HWC_SECRET_ID'];
    resetRuntime();
    const { handler } = await import('../../functions/archive-backup.js');

    // Act
    const report = await handler({ graphId: G, backupId: B }, context()) as unknown as { backups: { status: string }[] };

    // Assess
    expect(report.backups.map((b) => b.status)).toEqual(['archived']);
    expect(await listKeys(bucket, `lambda/${G}/${B}/`)).toContain(`lambda/${G}/${B}/manifest.json`);
    await expect(handler({ graphId: '..', backupId: B }, context())).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('graphId') as unknown });
  });
});
