/**
 * `npm run bench`: the archiver side by side with real peers, on the same local servers, in one
 * run (issue 7, "How it is measured"). Cases: (a) one 1 GiB file; (b) one 256 MiB file from a
 * source capped at 8 MiB/s per connection; (c) 100 × 8 MiB files. Programs, each timed as a
 * whole process from spawn to exit (see programs.ts): plain download (curl), plain upload
 * (rclone copyto of a local copy), `rclone copyurl`, and the archiver's bin. Every round runs
 * every program on every case, in an order rotated from round to round; the summary gives the
 * median MiB/s, the ratios of medians and PASS/MISS against the targets.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { hostHugePagesEnv } from '../bin/huge-pages.js';
import { loadConfig } from '../lib/config.js';
import { startSwift, swiftAwsEnv, type SwiftStack } from '../scripts/local-stack/swift.js';
import { parseBenchArgs, USAGE, type BenchArgs } from './args.js';
import { bwlimitRound, formatBwlimitRound, formatBwlimitTarget, type BwlimitRound } from './bwlimit.js';
import { benchCases, bwlimitCase, type BenchCase, type BenchFile, type BwlimitCase } from './cases.js';
import { findPeers, killRunning, runQuiet } from './measure.js';
import { archiver, archiverArgs, fetchLinks, gesEnv, plainDownload, plainUpload, prepareLocalFiles, purge, rcloneCopyurl, RCLONE_S3_FLAGS, type Source, type Stage } from './programs.js';
import { formatRound, formatSummary, formatTargets } from './report.js';
import { PROGRAMS, summarize, type Measurement, type Program, type Round } from './stats.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const GRAPH = 'bench-graph';
const TOKEN = 'bench-token';
const BUCKET = 'ges-bench';
/** Variables the archiver reads that the bench sets itself, or that would change what a run does. */
const ARCHIVER_OWNED = /^(AWS_|GES_|HWC_|RCLONE_)|^(ARCHIVE_BUCKET|ARCHIVE_PREFIX|DOWNLOAD_ALLOWED_HOSTS|S3_FORCE_PATH_STYLE|MANIFEST_URI|ALERT_TOPIC_ARN|COPY_QUEUE_URL)$/;

/** Set on Ctrl-C: what fails after it (programs killed, Swift stopping) is not a result to report. */
let stopping = false;

const say = (line: string): void => { process.stderr.write(`bench: ${line}\n`); };
const print = (line = ''): void => { process.stdout.write(`${line}\n`); };

interface EmulatorProcess {
  source: Source;
  obsHost: string;
  stop(): Promise<void>;
}

/** The GES emulator as its own process (test/emulator/cli.ts), so it does not share the bench's event loop. */
async function startEmulator(dir: string, name: string, spec: object): Promise<EmulatorProcess> {
  const specPath = join(dir, `${name}.json`);
  await writeFile(specPath, JSON.stringify(spec));
  const child: ChildProcess = spawn(NODE, ['--import', 'tsx', 'test/emulator/cli.ts', '--spec', specPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the emulator (${name}) exited with ${code} before listening`)));
    });
    const ends = JSON.parse(line) as { gesEndpoint: string; obsEndpoint: string; projectId: string };
    return { source: { gesEndpoint: ends.gesEndpoint, projectId: ends.projectId, token: TOKEN, graphId: GRAPH }, obsHost: new URL(ends.obsEndpoint).hostname, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function withoutOwned(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !ARCHIVER_OWNED.test(k)));
}

/** "curl 7.88.1", "rclone v1.60.1-DEV", "v22.23.3": the first two words of a --version answer. */
function version(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim().split(/\s+/).slice(0, 2).join(' ');
}

function printHeader(args: BenchArgs, stage: Stage, cases: readonly BenchCase[], source: Source): void {
  const archiverEnv = stage.archiverEnv;
  const cfg = loadConfig({ ...archiverEnv, ...gesEnv(source) });
  const tuned = Object.keys(archiverEnv).filter((k) => k.startsWith('ARCHIVE_') && k !== 'ARCHIVE_BUCKET' && k !== 'ARCHIVE_PREFIX').sort();
  const cpu = cpus();
  print(`ges-archiver benchmark, ${new Date().toISOString()}: ${args.rounds} round(s), cases ${args.cases.join(', ')}${args.quick ? ' (--quick: smaller files, a smoke check)' : ''}`);
  print(`machine: ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}); archiver, peers, Swift and the emulator all share it`);
  print(`peers: ${version(stage.curl, ['--version'])}, ${version(stage.rclone, ['version'])}`);
  print(`archiver: node bin/ges-archiver.js ${archiverArgs(GRAPH, 'BACKUP').slice(1).join(' ')} (Node ${version(stage.node, ['--version'])})`);
  print(`archiver settings (lib/config.ts defaults${tuned.length > 0 ? `; set in the environment: ${tuned.map((k) => `${k}=${archiverEnv[k]}`).join(' ')}` : ''}): `
    + `files at once ${cfg.concurrency.files}, parts at once ${cfg.concurrency.parts}, part size ${cfg.partSizeBytes / (1024 * 1024)} MiB, `
    + `ARCHIVE_STREAMS ${archiverEnv.ARCHIVE_STREAMS ?? '(not set: default)'}; `
    + `S3 checksums AWS_REQUEST_CHECKSUM_CALCULATION=${archiverEnv.AWS_REQUEST_CHECKSUM_CALCULATION} AWS_RESPONSE_CHECKSUM_VALIDATION=${archiverEnv.AWS_RESPONSE_CHECKSUM_VALIDATION} (Swift's s3api needs them)`);
  const huge = hostHugePagesEnv(['archive'], archiverEnv);
  print(`archiver memory: ${huge !== undefined
    ? `part buffers on huge pages (bin/huge-pages.js restarts the process with GLIBC_TUNABLES=${huge.GLIBC_TUNABLES})`
    : 'part buffers on ordinary pages (bin/huge-pages.js: no huge pages on request on this host)'}`);
  print(`download = curl -s -o /dev/null LINK (--parallel for several files); upload = rclone copyto FILE (rclone copy --transfers N for several) ${RCLONE_S3_FLAGS.join(' ')} --s3-disable-checksum; `
    + `rclone = rclone copyurl LINK ${RCLONE_S3_FLAGS.join(' ')} (N processes at once for several files)`);
  print('MiB/s = 2^20 bytes ÷ wall-clock seconds from spawn to exit (startup included); pipe limit = min(download, upload); ratios are of medians; `sync` and 1 s of quiet between programs.');
  print();
}

/**
 * Between two programs: the written data on disk and a second of quiet, so each program starts
 * on a settled machine, not in the wake of the one before (the rotation keeps the order cyclic,
 * so without this the same program would always follow the same other's writes).
 */
async function settle(stage: Stage): Promise<void> {
  await runQuiet('sync', [], process.env, stage.root);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

const SETTLE_MS = 1000;

/**
 * Swift, the emulator (and a capped one when a case needs it) and the bucket; every program's
 * environment. What it starts is pushed on `cleanups`.
 */
async function startStack(dir: string, cases: readonly BenchCase[], extra: readonly { backupId: string; files: BenchFile[] }[], peers: { curl: string; rclone: string }, cleanups: (() => Promise<void>)[]): Promise<{ stage: Stage; open: EmulatorProcess; capped: EmulatorProcess | undefined }> {
  say('starting Swift and the emulator...');
  const swift: SwiftStack = await startSwift();
  cleanups.push(() => swift.stop());
  const spec = { staticTokens: [TOKEN], graphs: [{ id: GRAPH, backups: [...cases, ...extra].map((c) => ({ id: c.backupId, files: c.files })) }] };
  const open = await startEmulator(dir, 'emulator', spec);
  cleanups.push(() => open.stop());
  const throttle = cases.find((c) => c.throttleBytesPerSecond !== undefined)?.throttleBytesPerSecond;
  // Same spec, so the same bytes; every response from this one is capped.
  const capped = throttle === undefined ? undefined : await startEmulator(dir, 'emulator-capped', { ...spec, throttleDownloads: throttle });
  if (capped) cleanups.push(() => capped.stop());

  // Tuning variables (ARCHIVE_STREAMS, ARCHIVE_FILE_CONCURRENCY, ...) stay: printed in the header.
  const base = withoutOwned(process.env);
  const archiverEnv: NodeJS.ProcessEnv = { ...base, ...swiftAwsEnv(swift), ARCHIVE_BUCKET: BUCKET, DOWNLOAD_ALLOWED_HOSTS: open.obsHost };
  // rclone 1.60 cannot load a custom CA bundle (AWS_CA_BUNDLE): it gets no AWS_* variable at all.
  const rcloneEnv: NodeJS.ProcessEnv = {
    ...base,
    RCLONE_CONFIG: join(dir, 'rclone.conf'),
    RCLONE_CONFIG_SW_TYPE: 's3', RCLONE_CONFIG_SW_PROVIDER: 'Other', RCLONE_CONFIG_SW_ENDPOINT: swift.endpoint,
    RCLONE_CONFIG_SW_ACCESS_KEY_ID: swift.accessKeyId, RCLONE_CONFIG_SW_SECRET_ACCESS_KEY: swift.secretAccessKey,
    RCLONE_CONFIG_SW_REGION: swift.region, RCLONE_CONFIG_SW_FORCE_PATH_STYLE: 'true',
  };
  const stage: Stage = { root: ROOT, node: NODE, ...peers, dir, bucket: BUCKET, curlEnv: base, rcloneEnv, archiverEnv };
  await runQuiet(peers.rclone, ['mkdir', '-q', `sw:${BUCKET}`], rcloneEnv, ROOT);
  return { stage, open, capped };
}

/** `--case bwlimit`: the archiver alone, its download rate against --bwlimit, every round. */
async function runBwlimitCase(args: BenchArgs, stage: Stage, bw: BwlimitCase, source: Source, runId: string): Promise<void> {
  const results: BwlimitRound[] = [];
  for (let round = 1; round <= args.rounds; round++) {
    say(`round ${round}/${args.rounds} ${bw.title}: archiver...`);
    const prefix = `${runId}/r${round}-${bw.id}/`;
    const m = await archiver(stage, bw, source, prefix, ['--bwlimit', bw.flag, '--stats-json', '--log-level', 'warn']);
    await purge(stage, prefix);
    const r = bwlimitRound(bw, m);
    results.push(r);
    print(formatBwlimitRound(round, bw, r));
  }
  print();
  print('Target (issue 12, --bwlimit):');
  print(formatBwlimitTarget(bw, results));
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    if (!(err instanceof Error && err.message.includes('usage:'))) process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    print(USAGE);
    return 0;
  }
  const peers = findPeers();
  if (!existsSync(NODE)) throw new Error(`the project's Node 22 is missing (${NODE}): run npm ci`);
  const cases = benchCases(args.quick).filter((c) => args.cases.includes(c.id));
  const bw = args.cases.includes('bwlimit') ? bwlimitCase(args.quick) : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'ges-bench-'));
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => say(`clean-up failed: ${String(err)}`));
  };
  // Ctrl-C reaches the bench more than once (from the terminal, and relayed by npm and tsx):
  // the first starts the clean-up, the others must not kill the process before it is done
  // (Swift's servers run in their own sessions and would be left behind).
  const interrupted = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    say(`${sig}: stopping the measured programs, the emulator and Swift...`);
    killRunning();
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);

  try {
    const { stage, open, capped } = await startStack(dir, cases, bw ? [bw] : [], peers, cleanups);
    printHeader(args, stage, cases, open.source);

    const localDirs = new Map<string, string>();
    for (const c of cases) {
      say(`${c.title}: writing local copies for the plain upload...`);
      localDirs.set(c.id, await prepareLocalFiles(stage, c, await fetchLinks(open.source, c)));
    }

    const runId = Date.now().toString(36);
    const titleWidth = Math.max(...cases.map((c) => c.title.length));
    const rounds = new Map<string, Round[]>(cases.map((c) => [c.id, []]));
    for (let round = 1; round <= args.rounds; round++) {
      for (const c of cases) {
        const source = c.throttleBytesPerSecond !== undefined && capped ? capped.source : open.source;
        // Rotate the order each round, so no program always runs first (cold) or right after another.
        const order = PROGRAMS.map((_, i) => PROGRAMS[(i + round - 1) % PROGRAMS.length] as Program);
        const measured: Partial<Record<Program, Measurement>> = {};
        for (const program of order) {
          say(`round ${round}/${args.rounds} ${c.title}: ${program}...`);
          const prefix = `${runId}/r${round}-${c.id}-${program}/`;
          const links = await fetchLinks(source, c);
          measured[program] = program === 'download' ? await plainDownload(stage, c, links)
            : program === 'upload' ? await plainUpload(stage, c, localDirs.get(c.id) as string, prefix)
              : program === 'rclone' ? await rcloneCopyurl(stage, c, links, prefix)
                : await archiver(stage, c, source, prefix);
          if (program !== 'download') await purge(stage, prefix);
          await settle(stage);
        }
        const r = measured as Round;
        rounds.get(c.id)?.push(r);
        print(formatRound(round, c, r, order, titleWidth));
      }
    }

    if (bw) await runBwlimitCase(args, stage, bw, open.source, runId);
    if (cases.length === 0) return 0;
    const rows = cases.map((c) => ({ c, s: summarize(rounds.get(c.id) ?? []) }));
    print();
    print(`Medians over ${args.rounds} round(s), MiB/s:`);
    for (const line of formatSummary(rows)) print(line);
    print();
    print('Targets (issue 7):');
    for (const line of formatTargets(rows)) print(line);
    return 0;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await cleanup();
  }
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  if (stopping) return;
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
