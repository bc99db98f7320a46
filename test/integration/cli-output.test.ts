// What the CLI prints on stderr and stdout: log lines on a real terminal (a pseudo-terminal,
// with the progress bar drawn), JSON-only stderr with LOG_FORMAT=json, LOG_* validated like
// every other setting, and reports (stdout and _runs/) redacted like the logs.
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listKeys, s3Endpoint, sqsEndpoint } from '../support/aws.js';
import { runCli, tokenEnv, useLocalS3, writeManifest } from '../support/cli.js';
import { startS3Proxy } from '../support/s3-proxy.js';
import { runCliInTerminal } from '../support/terminal.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const TOKEN = 'static-token-output';
// A backup name that quotes a signed link: what a log line would redact, a report must too.
const LEAKY_NAME = 'nightly from https://obs.example.com/b/k?AccessKeyId=AKIDLEAK&Signature=SIGLEAK';

describe('CLI output: terminal, log format and level, redacted reports', () => {
  let emulator: Emulator;

  beforeAll(async () => {
    useLocalS3();
    emulator = await startEmulator({
      staticTokens: [TOKEN],
      graphs: [{ id: G, backups: [
        { id: B1, name: LEAKY_NAME, files: [{ name: 'a.bin', bytes: 3 * MiB }, { name: 'b.bin', bytes: 5000 }] },
        { id: B2, name: 'b2', files: [{ name: 'c.bin', bytes: 1000 }] },
      ] }],
    });
  });

  afterAll(async () => {
    await emulator.close();
  });

  it('shows on a terminal the errors logged as the progress bar stops and after it: the unstored run report, the failed alert', async () => {
    // Prepare: the store refuses the run report (as a bucket policy would); the alert topic does not exist
    const bucket = await createTestBucket('terminal');
    const proxy = await startS3Proxy(s3Endpoint(), (req) => req.method === 'PUT' && (req.url ?? '').includes('/_runs/'));
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...tokenEnv(emulator, bucket, TOKEN),
      AWS_ENDPOINT_URL_S3: proxy.endpoint,
      AWS_ENDPOINT_URL_SNS: sqsEndpoint(),
      ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:no-such-topic',
      LOG_LEVEL: undefined,
    };

    try {
      // Act: B1 is archived, a backup GES does not know fails (so an alert is due)
      const manifest = await writeManifest({ version: 1, graphs: [{ graphId: G, backups: [B1, 'deadbeef-0000-4000-8000-000000000000'] }] });
      const result = await runCliInTerminal(['run', '--manifest', manifest], env);

      // Assess
      expect(result.code).toBe(1);
      expect(proxy.refused).toBe(1);
      expect(result.screen).toMatch(/[\u2588\u2591]{10,}/); // the bar was drawn: this was a terminal
      expect(result.screen).toContain('could not store the run report');
      expect(result.screen).toContain('could not publish the alert');
      expect(result.screen).toContain(`Run report: NOT stored in s3://${bucket}/`);
      expect(result.screen).toMatch(/archived\s+\S+ \(nightly from https:\/\/obs\.example\.com\/b\/k\?\[REDACTED\]/);
      expect(result.screen).not.toMatch(/SIGLEAK|AKIDLEAK/);
      expect(await listKeys(bucket, `ges-backups/${G}/${B1}/`)).toContain(`ges-backups/${G}/${B1}/manifest.json`);
    } finally {
      await proxy.close();
    }
  });

  it('with LOG_FORMAT=json writes only JSON records to stderr, progress included', async () => {
    // Prepare
    const bucket = await createTestBucket('json-logs');
    const env = { ...tokenEnv(emulator, bucket, TOKEN), LOG_FORMAT: 'json', LOG_LEVEL: undefined };

    // Act
    const result = await runCli(['archive', '--graph', G, '--backup', B2], env);

    // Assess
    expect(result.code).toBe(0);
    const lines = result.stderr.trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.some((r) => r['msg'] === 'progress')).toBe(true);
    expect(records.filter((r) => r['msg'] === 'progress').at(-1)).toMatchObject({ level: 'info', bytes: 1000, files: 1, totalFiles: 1 });
    expect(result.stderr).not.toContain('progress:');
  });

  it('refuses LOG_LEVEL=verbose and LOG_FORMAT=xml with exit 2, naming the variable and the allowed values', async () => {
    // Prepare
    const bucket = await createTestBucket('log-level');

    // Act
    const level = await runCli(['archive', '--graph', G, '--backup', B2], { ...tokenEnv(emulator, bucket, TOKEN), LOG_LEVEL: 'verbose' });
    const format = await runCli(['verify'], { ARCHIVE_BUCKET: bucket, LOG_FORMAT: 'xml' });

    // Assess
    expect(level.code).toBe(2);
    expect(level.stderr).toBe('ges-archiver: Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent\n');
    expect(format.code).toBe(2);
    expect(format.stderr).toContain('LOG_FORMAT must be one of pretty, json');
    expect(await listKeys(bucket)).toEqual([]);
  });

  it('redacts the run report in _runs/ and the --json output like the logs', async () => {
    // Prepare
    const bucket = await createTestBucket('redacted-report');

    // Act
    const result = await runCli(['archive', '--graph', G, '--backup', B1, '--json'], tokenEnv(emulator, bucket, TOKEN));

    // Assess
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { reportKey: string; backups: { backupName: string }[] };
    expect(report.backups[0]?.backupName).toBe('nightly from https://obs.example.com/b/k?[REDACTED]');
    const stored = (await getObjectBytes(bucket, report.reportKey)).toString();
    expect(stored).toContain('nightly from https://obs.example.com/b/k?[REDACTED]');
    expect(stored + result.stdout).not.toMatch(/SIGLEAK|AKIDLEAK/);
  });
});
