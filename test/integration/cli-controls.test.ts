// Command-line controls and output (issue 12, item 5), against the GES emulator and Swift:
// global options before or after the command, --log-level/--log-format/-q, --stats-json,
// the copy controls (--transfers, --streams, --part-size, --bwlimit) over their variables,
// `archive --backup latest`, the --dry-run file list, and the shell completion scripts.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, s3Client } from '../support/aws.js';
import { runCli, tokenEnv, useLocalS3 } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '7a3c0f0e-1d2b-4c5d-8e9f-0a1b2c3d4e5f';
const B_OLD = '11111111-aaaa-4bbb-8ccc-000000000001';
const B_LATEST = '11111111-aaaa-4bbb-8ccc-000000000002';
const B_RUNNING = '11111111-aaaa-4bbb-8ccc-000000000003';
const B_FAILED = '11111111-aaaa-4bbb-8ccc-000000000004';
const TOKEN = 'static-token-controls';
const BIG = 12 * MiB;
const SMALL = 5000;

interface JsonReport {
  backups: { graphId: string; backupId: string; status: string; files: number; bytes: number; fileList?: { name: string; bytes: number | null }[] }[];
}

interface StatsLine {
  msg: string;
  level: string;
  time: string;
  stats: { bytes: number; totalBytes: number; bytesPerSecond: number; files: number; totalFiles: number; elapsedSeconds: number; etaSeconds: number | null; final: boolean };
}

const jsonLines = (text: string): Record<string, unknown>[] => text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('command-line controls and output', () => {
  let emulator: Emulator;

  beforeAll(async () => {
    useLocalS3();
    emulator = await startEmulator({
      staticTokens: [TOKEN],
      graphs: [{ id: G, backups: [
        { id: B_OLD, status: 'success', startTimestamp: Date.UTC(2025, 0, 1), files: [{ name: 'old.bin', bytes: 1000 }] },
        { id: B_LATEST, status: 'success', startTimestamp: Date.UTC(2025, 0, 3), files: [{ name: 'big.bin', bytes: BIG }, { name: 'small.bin', bytes: SMALL }] },
        // Newer, but not `success`: `latest` never picks them.
        { id: B_RUNNING, status: 'backing_up', startTimestamp: Date.UTC(2025, 0, 4), files: [{ name: 'r.bin', bytes: 10 }] },
        { id: B_FAILED, status: 'failed', startTimestamp: Date.UTC(2025, 0, 5), files: [{ name: 'f.bin', bytes: 10 }] },
      ] }],
    });
  });

  afterAll(async () => {
    await emulator.close();
  });

  const envFor = (bucket: string): Record<string, string | undefined> => ({ ...tokenEnv(emulator, bucket, TOKEN), LOG_LEVEL: undefined });

  describe('global options', () => {
    it('are accepted before and after the command, with the same effect', async () => {
      // Prepare
      const bucket = await createTestBucket('ctl-order');
      const env = { ...envFor(bucket), LOG_LEVEL: 'warn' };
      // Act
      const before = await runCli(['--json', '--log-format', 'json', '--log-level', 'debug', 'archive', '--graph', G, '--backup', B_OLD, '--dry-run'], env);
      const after = await runCli(['archive', '--graph', G, '--backup', B_OLD, '--dry-run', '--json', '--log-format', 'json', '--log-level', 'debug'], env);
      // Assess: the JSON report on stdout, only JSON on stderr, debug lines despite LOG_LEVEL=warn
      for (const r of [before, after]) {
        expect(r.code).toBe(0);
        expect((JSON.parse(r.stdout) as JsonReport).backups).toMatchObject([{ backupId: B_OLD, status: 'planned' }]);
        const records = jsonLines(r.stderr);
        expect(records.some((rec) => rec['level'] === 'debug')).toBe(true);
      }
    });

    it('are listed in every command\'s help', async () => {
      const help = await runCli(['archive', '--help'], {});
      expect(help.code).toBe(0);
      for (const option of ['--json', '--quiet', '--log-level', '--log-format', '--stats-json', '--no-progress', '--bwlimit', '--part-size', '--transfers', '--streams']) {
        expect(help.stdout).toContain(option);
      }
    });

    it('refuse a bad --log-level or --log-format, and -q with -v, with exit 2 and one line naming the flag', async () => {
      const env = envFor('unused-bucket');
      const level = await runCli(['--log-level', 'loud', 'list'], env);
      const format = await runCli(['list', '--log-format', 'xml'], env);
      const both = await runCli(['archive', '--graph', G, '--backup', B_OLD, '-q', '-v'], env);
      expect(level).toMatchObject({ code: 2, stderr: 'ges-archiver: --log-level must be one of fatal, error, warn, info, debug, trace, silent (got "loud")\n' });
      expect(format).toMatchObject({ code: 2, stderr: 'ges-archiver: --log-format must be one of pretty, json (got "xml")\n' });
      expect(both.code).toBe(2);
      expect(both.stderr).toBe('ges-archiver: -q/--quiet and -v/--verbose cannot be used together: pick one\n');
    });

    it('-q leaves only errors on stderr: nothing for a run that succeeds, error lines only for one that fails', async () => {
      // Prepare
      const bucket = await createTestBucket('ctl-quiet');
      const env = { ...envFor(bucket), LOG_LEVEL: 'debug' };
      // Act
      const ok = await runCli(['-q', 'archive', '--graph', G, '--backup', B_OLD], env);
      const failed = await runCli(['archive', '--graph', G, '--backup', B_RUNNING, '-q', '--log-format', 'json'], env);
      const loud = await runCli(['archive', '--graph', G, '--backup', B_RUNNING, '--log-format', 'json'], env);
      // Assess
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('1 archived');
      expect(ok.stderr).toBe('');
      expect(failed.code).toBe(1);
      expect(failed.stdout).toContain('BACKUP_NOT_READY');
      for (const rec of jsonLines(failed.stderr)) expect(['error', 'fatal']).toContain(rec['level']);
      // Without -q the same run says more (what -q removed)
      expect(jsonLines(loud.stderr).some((rec) => rec['level'] === 'info' || rec['level'] === 'debug')).toBe(true);
    });
  });

  describe('copy controls', () => {
    it.each([
      [['--transfers', '0'], '--transfers must be a whole number from 1 to 64'],
      [['--streams', '33'], '--streams must be a whole number from 1 to 32'],
      [['--part-size', '4M'], '--part-size must be a size from 5 MiB to 512 MiB'],
      [['--part-size', '1GiB'], '--part-size must be a size from 5 MiB to 512 MiB'],
      [['--bwlimit', '10'], '--bwlimit must be a rate from 1k to 1T per second with a unit'],
      [['--bwlimit', 'fast'], '--bwlimit must be a rate from 1k to 1T per second with a unit'],
    ])('refuse %j with exit 2, one line naming the flag and its range, before GES is asked anything', async (args, message) => {
      // Prepare
      const env = envFor(await createTestBucket('ctl-bad'));
      const asked = emulator.stats.listRequests + emulator.stats.linkRequests;
      // Act
      const r = await runCli(['archive', '--graph', G, '--backup', B_OLD, ...args], env);
      // Assess
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
      expect(r.stderr).toContain(`ges-archiver: ${message}`);
      expect(emulator.stats.listRequests + emulator.stats.linkRequests).toBe(asked);
    });

    it('--part-size overrides ARCHIVE_PART_SIZE_MB (rclone sizes: 6M)', async () => {
      // Prepare: 5 MiB parts from the environment would cut the 12 MiB file into 3 parts
      const bucket = await createTestBucket('ctl-part');
      const env = { ...envFor(bucket), ARCHIVE_PART_SIZE_MB: '5' };
      // Act
      const r = await runCli(['archive', '--graph', G, '--backup', B_LATEST, '--part-size', '6M', '--no-progress'], env);
      // Assess: 2 parts of 6 MiB (the multipart ETag counts them)
      expect(r.code).toBe(0);
      const s3 = s3Client();
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `ges-backups/${G}/${B_LATEST}/big.bin` }));
        expect(head.ETag).toMatch(/-2"?$/);
      } finally {
        s3.destroy();
      }
    });

    it('--bwlimit holds the run\'s download rate; --stats-json reports it as JSON lines that never mix with JSON logs', async () => {
      // Prepare: 12 MiB at 4 MiB/s: about 3 s; debug logs as JSON on the same stderr
      const bucket = await createTestBucket('ctl-bw');
      const env = { ...envFor(bucket), ARCHIVE_BWLIMIT: 'off', LOG_FORMAT: 'json' };
      const started = Date.now();
      // Act
      const r = await runCli(['archive', '--graph', G, '--backup', B_LATEST, '--bwlimit', '4M', '--stats-json', '-v'], env);
      const seconds = (Date.now() - started) / 1000;
      // Assess: every stderr line is one JSON object
      expect(r.code).toBe(0);
      const records = jsonLines(r.stderr);
      expect(records.some((rec) => rec['level'] === 'debug')).toBe(true);
      const stats = records.filter((rec) => rec['msg'] === 'stats') as unknown as StatsLine[];
      expect(stats.length).toBeGreaterThanOrEqual(3); // one a second, and the final one
      const last = stats.at(-1)!;
      expect(last.stats).toEqual({
        bytes: BIG + SMALL, totalBytes: expect.any(Number) as number, bytesPerSecond: expect.any(Number) as number,
        files: 2, totalFiles: 2, elapsedSeconds: expect.any(Number) as number, etaSeconds: 0, final: true,
      });
      expect(stats.slice(0, -1).every((s) => !s.stats.final)).toBe(true);
      // The limit held: 12 MiB less the bucket's burst at 4 MiB/s, and never above it (10 %)
      expect(seconds).toBeGreaterThan(2.7);
      expect(last.stats.bytesPerSecond).toBeLessThanOrEqual(4 * MiB * 1.1);
      const mid = stats.find((s) => s.stats.bytes > 0 && !s.stats.final);
      expect(mid?.stats.etaSeconds).toEqual(expect.any(Number));
    });
  });

  describe('archive --backup latest and --dry-run', () => {
    it('picks the newest success backup, names it in the report, and the dry run lists its files with sizes (JSON)', async () => {
      // Prepare
      const env = envFor(await createTestBucket('ctl-latest'));
      const downloads = emulator.stats.downloadRequests;
      // Act
      const r = await runCli(['archive', '--graph', G, '--backup', 'latest', '--dry-run', '--json'], env);
      // Assess
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as JsonReport;
      expect(report.backups).toHaveLength(1);
      const b = report.backups[0]!;
      expect(b).toMatchObject({ graphId: G, backupId: B_LATEST, status: 'planned', files: 2 });
      expect(b.fileList?.map((f) => f.name)).toEqual(['big.bin', 'small.bin']);
      expect(b.fileList?.[0]?.bytes).toBe(BIG);
      expect(b.bytes).toBe(b.fileList!.reduce((sum, f) => sum + (f.bytes ?? 0), 0));
      expect(emulator.stats.downloadRequests).toBe(downloads);
    });

    it('lists each file with its size and the total in the text summary', async () => {
      const env = envFor(await createTestBucket('ctl-dry'));
      const downloads = emulator.stats.downloadRequests;
      const r = await runCli(['archive', '--graph', G, '--backup', 'latest', '--dry-run'], env);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`planned   ${G}/${B_LATEST}`);
      expect(r.stdout).toMatch(/\n {12}big\.bin +12\.0 MiB\n {12}small\.bin +\d+(\.\d)? KiB\n/);
      expect(r.stdout).toMatch(/1 planned, 0 skipped, 0 failed; 2 files, 12\.0 MiB/);
      expect(emulator.stats.downloadRequests).toBe(downloads);
    });
  });

  describe('shell completion', () => {
    let script: string;

    beforeAll(async () => {
      const r = await runCli(['completion', 'bash'], {});
      expect(r.code).toBe(0);
      script = join(tmpdir(), `ges-archiver-completion-${process.pid}.bash`);
      await writeFile(script, r.stdout);
    });

    /** What bash completes for the words typed so far (the last one being completed). */
    function complete(...typed: string[]): string[] {
      const words = ['ges-archiver', ...typed].map((w) => `'${w}'`).join(' ');
      const r = spawnSync('bash', ['-c', `source <(cat "$1") && COMP_WORDS=(${words}) && COMP_CWORD=${typed.length} && _ges_archiver && printf '%s\\n' "\${COMPREPLY[@]}"`, '_', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return r.stdout.split('\n').filter((l) => l !== '');
    }

    it('registers with bash\'s complete', () => {
      const r = spawnSync('bash', ['-c', 'source <(cat "$1"); complete -p ges-archiver', '_', script], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe('complete -F _ges_archiver ges-archiver');
    });

    it('completes subcommands, their options, global options and choice values', () => {
      expect(complete('')).toEqual(['run', 'archive', 'verify', 'list', 'cleanup', 'restore', 'prune', 'completion', 'help']);
      expect(complete('ar')).toEqual(['archive']);
      expect(complete('--log-level', 'debug', 'ver')).toEqual(['verify']);
      expect(complete('archive', '--bw')).toEqual(['--bwlimit']);
      expect(complete('archive', '--graph', 'G', '--st')).toEqual(['--streams', '--stats-json']);
      expect(complete('list', '--log-format', '')).toEqual(['pretty', 'json']);
      expect(complete('completion', '')).toEqual(['bash', 'zsh']);
      expect(complete('archive', '--graph', '')).toEqual([]);
    });

    // scripts/local-stack/install.sh installs zsh with the local stack.
    it('the zsh script parses (zsh -n)', async () => {
      const r = await runCli(['completion', 'zsh'], {});
      const file = join(tmpdir(), `_ges-archiver-${process.pid}`);
      await writeFile(file, r.stdout);
      expect(spawnSync('zsh', ['-n', file], { encoding: 'utf8' }).status).toBe(0);
    });

    it('the zsh script names every command and option it was generated from', async () => {
      const r = await runCli(['completion', 'zsh'], {});
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith('#compdef ges-archiver\n')).toBe(true);
      for (const name of ['run', 'archive', 'verify', 'list', 'cleanup', 'restore', 'prune', 'completion']) expect(r.stdout).toContain(`        ${name}) _arguments`);
      expect(r.stdout).toContain('--log-level[');
      expect(r.stdout).toContain('(fatal error warn info debug trace silent)');
    });

    it('refuses a shell it does not know (exit 2)', async () => {
      const r = await runCli(['completion', 'fish'], {});
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('bash, zsh');
    });
  });
});
