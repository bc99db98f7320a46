// Ctrl-C and SIGTERM as a user sends them: the built command (bin + dist) runs as a child
// process against the GES emulator (throttled, so the copy is slow) and Swift, and gets a real
// signal. A long copy keeps what it stored under a checkpoint (saved as it goes, and at the
// interruption) and the next run continues it; a short one leaves nothing behind. Either way
// the run exits 130 and reports `cancelled`; a run killed outright is continued all the same.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys } from '../support/aws.js';
import { tokenEnv, useLocalS3 } from '../support/cli.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/ges-archiver.js');
const MiB = 1024 * 1024;
const TOKEN = 'interrupt-token';
const GRAPH = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const LONG = '7ed3f51d-816d-4651-9129-fe21b64b5c91';
const SHORT = '0f1e2d3c-4b5a-4697-8877-665544332211';
const LONG_FILE = { name: 'vertices.bin', bytes: 80 * MiB + 7 };
const SHORT_FILE = { name: 'edges.bin', bytes: 20 * MiB + 3 };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface JsonReport {
  backups: { backupId: string; status: string; error?: { code: string } }[];
}

/** Starts the built command; `interruptWhen` is polled every 50 ms and, once true, `signal` is sent. */
function runUntil(args: string[], env: Record<string, string | undefined>, interruptWhen?: () => boolean, signal: NodeJS.Signals = 'SIGINT'): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const poll = interruptWhen === undefined ? undefined : setInterval(() => {
      if (!interruptWhen()) return;
      clearInterval(poll);
      child.kill(signal);
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('interrupting a run (Ctrl-C, SIGTERM)', () => {
  let emulator: Emulator;

  beforeAll(async () => {
    useLocalS3();
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build-cli.js'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`scripts/build-cli.js failed (${built.status}): ${built.stderr}`);
    emulator = await startEmulator({
      staticTokens: [TOKEN],
      graphs: [{ id: GRAPH, backups: [{ id: LONG, files: [LONG_FILE] }, { id: SHORT, files: [SHORT_FILE] }] }],
    });
  });

  afterAll(async () => {
    await emulator.close();
  });

  afterEach(() => {
    emulator.faults.throttleDownloads(null);
    emulator.resetStats();
  });

  function env(bucket: string): Record<string, string | undefined> {
    const aws = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('AWS_')));
    // One stream: the pace at the first part decides whether the copy keeps a resumable hash.
    // Copies that look longer than 10 s at their first part are resumable (the default, 120 s, would make this test slow).
    return { ...aws, ...tokenEnv(emulator, bucket, TOKEN), ARCHIVE_STREAMS: '1', ARCHIVE_RESUMABLE_AFTER_S: '10', LOG_LEVEL: 'info' };
  }

  const served = (name: string): number => emulator.stats.downloadBytes.get(name) ?? 0;

  /** A run at full speed after the interrupted one: it continues at `offset`, downloads only the rest, and leaves the file whole and nothing behind. */
  async function expectContinued(bucket: string, args: string[], runEnv: Record<string, string | undefined>, offset: number): Promise<void> {
    emulator.faults.throttleDownloads(null);
    emulator.resetStats();

    const second = await runUntil(args, runEnv);

    expect(second.code).toBe(0);
    expect((JSON.parse(second.stdout) as JsonReport).backups).toEqual([expect.objectContaining({ backupId: LONG, status: 'archived' })]);
    expect(second.stderr).toContain(`resuming ${LONG_FILE.name} at byte ${offset} of ${LONG_FILE.bytes}`);
    expect(served(LONG_FILE.name)).toBe(LONG_FILE.bytes - offset);
    const stored = await getObjectBytes(bucket, `ges-backups/${GRAPH}/${LONG}/${LONG_FILE.name}`);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(emulator.fileSha256(GRAPH, LONG, LONG_FILE.name));
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
  }

  it('a long copy interrupted by Ctrl-C keeps its parts under a checkpoint, and the next run continues from there', async () => {
    const bucket = await createTestBucket('interrupt-long');
    const args = ['archive', '--graph', GRAPH, '--backup', LONG, '--json', '--no-progress'];
    // 2 MiB/s: ~40 s for the file, so the copy keeps a resumable hash; stop once 3 parts came in.
    emulator.faults.throttleDownloads(2 * MiB);

    const first = await runUntil(args, env(bucket), () => served(LONG_FILE.name) >= 15 * MiB + MiB / 2);

    expect(first.code).toBe(130);
    expect((JSON.parse(first.stdout) as JsonReport).backups).toEqual([expect.objectContaining({ backupId: LONG, status: 'cancelled' })]);
    expect(first.stderr).not.toMatch(/^\s+at /m);
    const state = await listKeys(bucket, `ges-backups/_state/${GRAPH}/${LONG}/`);
    expect(state).toEqual([`ges-backups/_state/${GRAPH}/${LONG}/checkpoints/${LONG_FILE.name}.json`]);
    const checkpoint = JSON.parse((await getObjectBytes(bucket, state[0]!)).toString()) as { uploadId: string; offset: number };
    expect(checkpoint.offset).toBeGreaterThanOrEqual(5 * MiB);
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toEqual([checkpoint.uploadId]);
    expect(await listKeys(bucket, `ges-backups/${GRAPH}/${LONG}/`)).toEqual([]);

    await expectContinued(bucket, args, env(bucket), checkpoint.offset);
  }, 120_000);

  it('a run killed outright (SIGKILL, a crash) leaves a checkpoint saved while it ran, and the next run continues from it', async () => {
    const bucket = await createTestBucket('interrupt-kill');
    const args = ['archive', '--graph', GRAPH, '--backup', LONG, '--json', '--no-progress'];
    emulator.faults.throttleDownloads(2 * MiB);
    // Progress checkpoints every second; killed once 3 parts came in and another second passed.
    const crashEnv = { ...env(bucket), ARCHIVE_CHECKPOINT_EVERY_S: '1' };
    let enoughAt: number | undefined;

    const first = await runUntil(args, crashEnv, () => {
      if (served(LONG_FILE.name) >= 15 * MiB + MiB / 2) enoughAt ??= Date.now();
      return enoughAt !== undefined && Date.now() - enoughAt > 1500;
    }, 'SIGKILL');

    expect(first.code).toBeNull();
    const state = await listKeys(bucket, `ges-backups/_state/${GRAPH}/${LONG}/`);
    expect(state).toEqual([`ges-backups/_state/${GRAPH}/${LONG}/checkpoints/${LONG_FILE.name}.json`]);
    const checkpoint = JSON.parse((await getObjectBytes(bucket, state[0]!)).toString()) as { uploadId: string; offset: number };
    expect(checkpoint.offset).toBeGreaterThanOrEqual(5 * MiB);
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toEqual([checkpoint.uploadId]);

    await expectContinued(bucket, args, crashEnv, checkpoint.offset);
  }, 120_000);

  it('Ctrl-C typed at a terminal (a pseudo-terminal) exits 130 with the long copy kept under its checkpoint', async () => {
    const bucket = await createTestBucket('interrupt-tty');
    emulator.faults.throttleDownloads(2 * MiB);
    const command = [process.execPath, BIN, 'archive', '--graph', GRAPH, '--backup', LONG].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');

    // util-linux `script` gives the command a terminal; ^C written to it is the terminal's interrupt key.
    const screen = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-qec', `stty cols 120 rows 40; ${command}`, '/dev/null'], {
        cwd: ROOT, env: { ...env(bucket), TERM: 'xterm-256color' }, stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
      const poll = setInterval(() => {
        if (served(LONG_FILE.name) < 11 * MiB) return;
        clearInterval(poll);
        child.stdin.write('\u0003');
      }, 50);
      child.on('error', reject);
      child.on('close', (code) => {
        clearInterval(poll);
        resolve({ code, out });
      });
    });

    expect(screen.code).toBe(130);
    expect(screen.out).toContain('cancelled');
    expect(screen.out).not.toMatch(/^\s+at /m);
    const state = await listKeys(bucket, `ges-backups/_state/${GRAPH}/${LONG}/checkpoints/`);
    expect(state).toHaveLength(1);
    const checkpoint = JSON.parse((await getObjectBytes(bucket, state[0]!)).toString()) as { uploadId: string };
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toEqual([checkpoint.uploadId]);
  }, 60_000);

  it('a reader that goes away (`2>&1 | head -1`) does not stop the run: it archives the backup, exit 0, nothing left behind', async () => {
    const bucket = await createTestBucket('interrupt-pipe');
    emulator.faults.throttleDownloads(8 * MiB);

    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'archive', '--graph', GRAPH, '--backup', SHORT], {
        cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env(bucket) }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Both streams close at the first line, as `head -1` would close the pipe they share.
      const close = (): void => {
        child.stdout.destroy();
        child.stderr.destroy();
      };
      child.stderr.once('data', close);
      child.stdout.once('data', close);
      child.on('error', reject);
      child.on('close', resolve);
    });

    expect(code).toBe(0);
    const prefix = `ges-backups/${GRAPH}/${SHORT}/`;
    expect(await listKeys(bucket, prefix)).toEqual([`${prefix}${SHORT_FILE.name}`, `${prefix}SHA256SUMS`, `${prefix}manifest.json`].sort());
    expect(await listInProgressUploads(bucket)).toEqual([]);
  }, 60_000);

  it('a short copy stopped by SIGTERM is removed: no upload, no checkpoint, exit 130, cancelled', async () => {
    const bucket = await createTestBucket('interrupt-short');
    // 4 MiB/s for 20 MiB: ~5 s, under the 10 s that are worth a resumable hash here.
    emulator.faults.throttleDownloads(4 * MiB);

    const run = await runUntil(['archive', '--graph', GRAPH, '--backup', SHORT, '--json', '--no-progress'], env(bucket),
      () => served(SHORT_FILE.name) >= 11 * MiB, 'SIGTERM');

    expect(run.code).toBe(130);
    expect((JSON.parse(run.stdout) as JsonReport).backups).toEqual([expect.objectContaining({ backupId: SHORT, status: 'cancelled' })]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, 'ges-backups/')).toEqual([expect.stringMatching(/^ges-backups\/_runs\//)]);
  }, 60_000);
});
