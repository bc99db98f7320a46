/**
 * `npm run bench`: archives one 1 GiB file and a set of 100 × 8 MiB files from the local
 * emulator into the local store (Swift), and prints, from the same run, the archiver's MB/s
 * and peak RSS next to two baselines over the same bytes: a plain download to /dev/null and a
 * plain upload to the same store, with the ratio archiver ÷ min(baselines). A 256 MiB file is
 * archived too, to show that peak RSS does not grow with file size.
 * Every measured program runs in its own process; startup time is excluded (each measures
 * its own copy time).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startSwift, swiftAwsEnv } from '../scripts/local-stack/swift.js';

const MiB = 1024 * 1024;
const GRAPH = 'bench-graph';
const TOKEN = 'bench-token';
const FILE_CONCURRENCY = 4;
const PART_CONCURRENCY = 4;
const PART_MB = 8;

interface Measured { bytes: number; seconds: number; rss?: number }

function child(args: string[], env: Record<string, string>): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ stdout, code: code ?? 1 }));
  });
}

async function startEmulatorProcess(spec: unknown, dir: string): Promise<{ endpoints: { gesEndpoint: string; obsEndpoint: string; projectId: string }; stop(): void }> {
  const specPath = join(dir, 'emulator.json');
  await writeFile(specPath, JSON.stringify(spec));
  const p = spawn(process.execPath, ['--import', 'tsx', 'test/emulator/cli.ts', '--spec', specPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: p.stdout });
    rl.once('line', resolve);
    p.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  return { endpoints: JSON.parse(line) as { gesEndpoint: string; obsEndpoint: string; projectId: string }, stop: () => p.kill('SIGTERM') };
}

function mbps(m: Measured): number {
  return m.bytes / 1e6 / m.seconds;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ges-bench-'));
  const swift = await startSwift({ dir: join(dir, 'swift') });
  let emulator: Awaited<ReturnType<typeof startEmulatorProcess>> | undefined;
  try {
    const many = Array.from({ length: 100 }, (_, i) => ({ name: `part-${String(i).padStart(3, '0')}.bin`, bytes: 8 * MiB }));
    emulator = await startEmulatorProcess({
      staticTokens: [TOKEN],
      graphs: [{
        id: GRAPH,
        backups: [
          { id: 'big-1g', files: [{ name: 'big.bin', bytes: 1024 * MiB }] },
          { id: 'mid-256m', files: [{ name: 'mid.bin', bytes: 256 * MiB }] },
          { id: 'many-8m', files: many },
        ],
      }],
    }, dir);
    const { gesEndpoint, obsEndpoint, projectId } = emulator.endpoints;
    const bucket = 'ges-bench';
    const awsEnv = swiftAwsEnv(swift);
    const s3 = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();

    const archiverEnv = {
      ...awsEnv,
      GES_ENDPOINT: gesEndpoint,
      GES_PROJECT_ID: projectId,
      GES_AUTH_TOKEN: TOKEN,
      ARCHIVE_BUCKET: bucket,
      ARCHIVE_PREFIX: `run-${Date.now()}/`,
      DOWNLOAD_ALLOWED_HOSTS: new URL(obsEndpoint).hostname,
      ARCHIVE_FILE_CONCURRENCY: String(FILE_CONCURRENCY),
      ARCHIVE_PART_CONCURRENCY: String(PART_CONCURRENCY),
      ARCHIVE_PART_SIZE_MB: String(PART_MB),
      LOG_LEVEL: 'warn',
    };

    async function archiver(backupId: string): Promise<Measured> {
      const rssFile = join(dir, `rss-${backupId}`);
      const r = await child(['--import', './bench/rss-probe.js', 'bin/ges-archiver.js', 'archive', '--graph', GRAPH, '--backup', backupId, '--json', '--no-progress'],
        { ...archiverEnv, BENCH_RSS_FILE: rssFile });
      if (r.code !== 0) throw new Error(`archiver failed (exit ${r.code}): ${r.stdout}`);
      const report = JSON.parse(r.stdout) as { backups: { bytes: number; durationMs: number }[] };
      const b = report.backups[0]!;
      return { bytes: b.bytes, seconds: b.durationMs / 1000, rss: Number(await readFile(rssFile, 'utf8')) };
    }
    async function download(backupId: string): Promise<Measured> {
      const r = await child(['--import', 'tsx', 'bench/baseline-download.ts', gesEndpoint, projectId, TOKEN, GRAPH, backupId, String(FILE_CONCURRENCY)], {});
      if (r.code !== 0) throw new Error('download baseline failed');
      return JSON.parse(r.stdout) as Measured;
    }
    async function upload(sizes: number[]): Promise<Measured> {
      const r = await child(['--import', 'tsx', 'bench/baseline-upload.ts', bucket, sizes.join(','), String(PART_MB * MiB), String(PART_CONCURRENCY), String(FILE_CONCURRENCY)], awsEnv);
      if (r.code !== 0) throw new Error('upload baseline failed');
      return JSON.parse(r.stdout) as Measured;
    }

    const rows: string[] = [];
    const scenarios: { label: string; backupId: string; sizes: number[] }[] = [
      { label: '1 x 1 GiB', backupId: 'big-1g', sizes: [1024 * MiB] },
      { label: '100 x 8 MiB', backupId: 'many-8m', sizes: many.map((f) => f.bytes) },
    ];
    for (const s of scenarios) {
      process.stderr.write(`bench: ${s.label}: download baseline...\n`);
      const d = await download(s.backupId);
      process.stderr.write(`bench: ${s.label}: upload baseline...\n`);
      const u = await upload(s.sizes);
      process.stderr.write(`bench: ${s.label}: archiver...\n`);
      const a = await archiver(s.backupId);
      const floor = Math.min(mbps(d), mbps(u));
      rows.push(`${s.label.padEnd(12)} | download ${mbps(d).toFixed(1).padStart(7)} MB/s | upload ${mbps(u).toFixed(1).padStart(7)} MB/s | archiver ${mbps(a).toFixed(1).padStart(7)} MB/s, peak RSS ${(a.rss! / MiB).toFixed(0).padStart(4)} MiB | ratio ${(mbps(a) / floor).toFixed(2)}`);
    }
    process.stderr.write('bench: 256 MiB file (RSS against file size)...\n');
    const mid = await archiver('mid-256m');
    rows.push(`${'1 x 256 MiB'.padEnd(12)} | archiver ${mbps(mid).toFixed(1)} MB/s, peak RSS ${(mid.rss! / MiB).toFixed(0)} MiB (compare with 1 GiB: memory does not grow with file size)`);
    console.log(`\nges-archiver benchmark (file concurrency ${FILE_CONCURRENCY}, part concurrency ${PART_CONCURRENCY}, part size ${PART_MB} MiB; MB = 10^6 bytes)`);
    for (const r of rows) console.log(r);
    console.log('ratio = archiver MB/s ÷ min(download, upload) MB/s over the same bytes, measured in this run.');
  } finally {
    emulator?.stop();
    await swift.stop();
  }
}

await main();
