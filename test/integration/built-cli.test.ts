// The command as users run it: bin/ges-archiver.js and the bundle in dist/ (scripts/build-cli.js),
// spawned as a child process, never the TypeScript sources. Archives go from the GES emulator
// into the local Swift store.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostHugePagesEnv } from '../../bin/huge-pages.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listKeys } from '../support/aws.js';
import { iamEnv, useLocalS3 } from '../support/cli.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/ges-archiver.js');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };
const NEEDED_NODE = PKG.engines.node.replace(/^>=\s*/, '');

const GRAPH = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const BACKUP = '7ed3f51d-816d-4651-9129-fe21b64b5c91';
const FILES = [{ name: 'metadata.xml', bytes: 3 * 1024 }, { name: 'vertices.bin', bytes: 6 * 1024 * 1024 + 17 }];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** With `watchTunables`: GLIBC_TUNABLES as /proc/PID/environ last showed it (the environment of the process's newest image). */
  tunables?: string | undefined;
}

interface RunOptions {
  bin?: string;
  node?: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  watchTunables?: boolean;
}

/** GLIBC_TUNABLES in the environment the process `pid` was last started (execve'd) with; null once it is gone. */
function tunablesOf(pid: number): string | undefined | null {
  try {
    const text = readFileSync(`/proc/${pid}/environ`, 'utf8');
    if (text === '') return null; // exited: a zombie shows no environment
    const vars = text.split('\0');
    return vars.find((v) => v.startsWith('GLIBC_TUNABLES='))?.slice('GLIBC_TUNABLES='.length);
  } catch {
    return null;
  }
}

function run(args: string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Not jest's environment (its NODE_OPTIONS, its AWS variables): only what is given.
    const child = spawn(opts.node ?? process.execPath, [opts.bin ?? BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let tunables: string | undefined;
    let exited = false;
    const watch = opts.watchTunables === true && child.pid !== undefined ? setInterval(() => {
      const now = exited ? null : tunablesOf(child.pid!);
      if (now !== null) tunables = now;
    }, 10) : undefined;
    child.on('exit', () => { exited = true; });
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(watch);
      resolve({ code, stdout, stderr, ...(opts.watchTunables === true ? { tunables } : {}) });
    });
  });
}

/** Newer than or equal to `need` ("22.0.0"), comparing major, minor, patch as numbers. */
function atLeast(version: string, need: string): boolean {
  const a = version.split('.').map((p) => parseInt(p, 10));
  const b = need.split('.').map((p) => parseInt(p, 10));
  for (let i = 0; i < 3; i += 1) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** The machine's own Node.js (Debian's /usr/bin/node), when it is older than the one needed. */
function olderSystemNode(): { path: string; version: string } | string {
  const path = '/usr/bin/node';
  const probe = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `${path} is not installed`;
  const version = probe.stdout.trim();
  return atLeast(version, NEEDED_NODE) ? `${path} is Node.js ${version}, not older than ${NEEDED_NODE}` : { path, version };
}

/** The oldest Node.js the package supports, as scripts/setup.sh fetches it (Linux x64 only). */
function oldestSupportedNode(): string | { skip: string } {
  if (`${process.platform}-${process.arch}` !== 'linux-x64') return { skip: `the registry's Node.js ${NEEDED_NODE} build is for Linux x64, not ${process.platform}-${process.arch}` };
  return join(ROOT, `.local-stack/node-${NEEDED_NODE}/bin/node`);
}

interface Metafile {
  outputs: Record<string, { inputs: Record<string, unknown>; imports: { path: string; kind: string; external?: boolean }[] }>;
}

/** The inputs bundled into `file` and into every chunk it imports statically (all loaded with it). */
function staticInputs(outputs: Metafile['outputs'], file: string, seen = new Set<string>()): string[] {
  const output = outputs[file];
  if (output === undefined || seen.has(file)) return [];
  seen.add(file);
  const chunks = output.imports.filter((i) => i.kind === 'import-statement' && i.external !== true).map((i) => i.path);
  return [...Object.keys(output.inputs), ...chunks.flatMap((chunk) => staticInputs(outputs, chunk, seen))];
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

describe('the built ges-archiver command (bin + dist bundle)', () => {
  let emulator: Emulator;
  let workDir: string;

  beforeAll(async () => {
    useLocalS3();
    // `npm ci` built dist/ (prepare); rebuild it if the sources changed since.
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build-cli.js'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`scripts/build-cli.js failed (${built.status}): ${built.stderr}`);
    workDir = await mkdtemp(join(tmpdir(), 'ges-built-cli-'));
    emulator = await startEmulator({ graphs: [{ id: GRAPH, backups: [{ id: BACKUP, name: 'social-1', startTimestamp: Date.UTC(2026, 10, 20), files: FILES }] }] });
  });

  afterAll(async () => {
    await emulator.close();
    await rm(workDir, { recursive: true, force: true });
  });

  /** The local S3 store (as useLocalS3 sets it up in this process) and the emulator. */
  function archiverEnv(bucket: string): Record<string, string | undefined> {
    const aws = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('AWS_')));
    return { ...aws, ...iamEnv(emulator, bucket) };
  }

  async function expectArchived(bucket: string, stdout: string): Promise<void> {
    const report = JSON.parse(stdout) as { backups: { graphId: string; backupId: string; status: string; files: number }[] };
    expect(report.backups).toEqual([expect.objectContaining({ graphId: GRAPH, backupId: BACKUP, status: 'archived', files: FILES.length })]);
    const prefix = `ges-backups/${GRAPH}/${BACKUP}/`;
    expect(await listKeys(bucket, prefix)).toEqual([...FILES.map((f) => `${prefix}${f.name}`), `${prefix}SHA256SUMS`, `${prefix}manifest.json`].sort());
    for (const f of FILES) {
      expect(sha256(await getObjectBytes(bucket, `${prefix}${f.name}`))).toBe(emulator.fileSha256(GRAPH, BACKUP, f.name));
    }
  }

  it('prints the package version with --version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await run([flag]);
      expect(result).toEqual({ code: 0, stdout: `${PKG.version}\n`, stderr: '' });
    }
  });

  it('answers --help on stdout with the commands and --version, exit 0', async () => {
    const result = await run(['--help']);

    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    for (const text of ['Usage: ges-archiver', '--version', 'run [options]', 'archive [options]', 'verify [options]', 'list [options]']) {
      expect(result.stdout).toContain(text);
    }
  });

  it('keeps the AWS SDK, undici, zod, yaml and pino out of what --help and --version load', () => {
    const meta = JSON.parse(readFileSync(join(ROOT, 'dist/meta.json'), 'utf8')) as Metafile;

    const loaded = staticInputs(meta.outputs, 'dist/cli.js');

    expect(loaded).toContain('cli/main.ts');
    expect(loaded.filter((input) => /node_modules\/(@aws-sdk|@smithy|undici|zod|yaml|pino|pino-pretty|hash-wasm)\//.test(input))).toEqual([]);
  });

  it('archives a backup from the emulator into S3, run from another working directory', async () => {
    const bucket = await createTestBucket('built-cli');

    const result = await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--json', '--no-progress'], { cwd: workDir, env: archiverEnv(bucket) });

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await expectArchived(bucket, result.stdout);
  });

  it('archive starts again in its own process (same PID) with huge pages where the host has them on request; a GLIBC_TUNABLES of the user stays', async () => {
    const bucket = await createTestBucket('built-cli-huge');
    const wanted = hostHugePagesEnv(['archive'], {})?.GLIBC_TUNABLES;
    // Slow enough to read the process's environment while it copies.
    emulator.faults.throttleDownloads(4 * 1024 * 1024);
    try {
      const own = await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--json', '--no-progress'], { cwd: workDir, env: archiverEnv(bucket), watchTunables: true });
      const theirs = await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--force', '--json', '--no-progress'], {
        cwd: workDir, env: { ...archiverEnv(bucket), GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }, watchTunables: true,
      });

      expect({ code: own.code, stderr: own.stderr, tunables: own.tunables }).toEqual({ code: 0, stderr: '', tunables: wanted });
      await expectArchived(bucket, own.stdout);
      expect({ code: theirs.code, stderr: theirs.stderr, tunables: theirs.tunables }).toEqual({ code: 0, stderr: '', tunables: 'glibc.malloc.hugetlb=0' });
    } finally {
      emulator.faults.throttleDownloads(null);
    }
  });

  it('runs a YAML manifest (its parser is loaded only for YAML, from a chunk of its own)', async () => {
    const bucket = await createTestBucket('built-cli-yaml');
    const manifest = join(workDir, 'manifest.yaml');
    await writeFile(manifest, `version: 1\ngraphs:\n  - graphId: ${GRAPH}\n    backups: [${BACKUP}]\n`);

    const result = await run(['run', '--manifest', manifest, '--json', '--no-progress'], { cwd: workDir, env: archiverEnv(bucket) });

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await expectArchived(bucket, result.stdout);
  });

  it('takes the way back: verify, restore into a directory that the system sha256sum -c accepts, and a prune dry run', async () => {
    const bucket = await createTestBucket('built-cli-back');
    const env = archiverEnv(bucket);
    expect((await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--json', '--no-progress'], { cwd: workDir, env })).code).toBe(0);
    const target = join(workDir, 'restored');

    const verify = await run(['verify', '--graph', GRAPH, '--json', '--no-progress'], { cwd: workDir, env });
    const restore = await run(['restore', '--graph', GRAPH, '--backup', BACKUP, '--to', target, '--json', '--no-progress'], { cwd: workDir, env });
    const check = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: target, encoding: 'utf8' });
    const prune = await run(['prune', '--keep-last', '1', '--dry-run', '--json'], { cwd: workDir, env });

    expect(verify.code).toBe(0);
    expect(restore.code).toBe(0);
    expect((JSON.parse(restore.stdout) as { files: { name: string; status: string }[] }).files.map((f) => [f.name, f.status]).sort())
      .toEqual(FILES.map((f) => [f.name, 'restored']).sort());
    expect(check.status).toBe(0);
    expect(check.stdout).toContain('vertices.bin: OK');
    expect(prune.code).toBe(0);
    expect(JSON.parse(prune.stdout)).toMatchObject({ kept: [{ graphId: GRAPH, backupId: BACKUP }], deleted: [] });
  });

  it('exits 2 on invalid arguments, with the reason on stderr and nothing on stdout', async () => {
    const cases: [string[], string][] = [
      [['archive', '--graph', GRAPH], "required option '--backup <backupId>' not specified"],
      [['--no-such-option'], "unknown option '--no-such-option'"],
      [['archive', '--graph', '../etc', '--backup', BACKUP], 'graphId must contain only letters'],
    ];
    for (const [args, reason] of cases) {
      const result = await run(args, { cwd: workDir });
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(result.stderr).toContain(reason);
    }
  });

  it('works from the packed tarball alone (bin + dist, no node_modules, no sources)', async () => {
    const packDir = await mkdtemp(join(workDir, 'pack-'));
    // The bundle is already built (beforeAll); --ignore-scripts packs it as it is.
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: ROOT, encoding: 'utf8' });
    expect(pack.status).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const paths = info!.files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['bin/ges-archiver.js', 'bin/huge-pages.js', 'dist/cli.js', 'package.json', 'dist/THIRD-PARTY-LICENSES.txt']));
    expect(paths.filter((p) => /^(cli|lib|functions|test|scripts)\/|^dist\/meta\.json$|\.ts$/.test(p))).toEqual([]);
    const untar = spawnSync('tar', ['-xzf', join(packDir, info!.filename), '-C', packDir]);
    expect(untar.status).toBe(0);
    const bin = join(packDir, 'package/bin/ges-archiver.js');
    const bucket = await createTestBucket('built-cli-pack');

    const version = await run(['--version'], { bin, cwd: workDir });
    const archived = await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--json', '--no-progress'], { bin, cwd: workDir, env: archiverEnv(bucket) });

    expect(version).toEqual({ code: 0, stdout: `${PKG.version}\n`, stderr: '' });
    expect(archived.stderr).toBe('');
    expect(archived.code).toBe(0);
    await expectArchived(bucket, archived.stdout);
  });

  it('in a checkout without the bundle, exits 2 with one line that names the fix', async () => {
    const checkout = await mkdtemp(join(workDir, 'checkout-'));
    await mkdir(join(checkout, 'bin'));
    for (const file of ['ges-archiver.js', 'huge-pages.js']) await copyFile(join(ROOT, 'bin', file), join(checkout, 'bin', file));
    await writeFile(join(checkout, 'package.json'), JSON.stringify({ type: 'module' }));

    const result = await run(['--help'], { bin: join(checkout, 'bin/ges-archiver.js'), cwd: workDir });

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toEqual([expect.stringContaining('dist/cli.js is missing; run `npm ci`'), '']);
  });

  const oldest = oldestSupportedNode();
  if (typeof oldest !== 'string') {
    it.skip(`runs on the oldest Node.js it supports (skipped: ${oldest.skip})`, () => undefined);
  } else {
    it(`runs on the oldest Node.js it supports (${NEEDED_NODE}): --version, archive, verify`, async () => {
      // Fails (rather than skips) without it: scripts/setup.sh fetches it, and the suite runs after setup.
      expect({ oldest, exists: existsSync(oldest) }).toEqual({ oldest, exists: true });
      const bucket = await createTestBucket('built-cli-oldest');
      const env = archiverEnv(bucket);

      const version = await run(['--version'], { node: oldest, cwd: workDir });
      const archived = await run(['archive', '--graph', GRAPH, '--backup', BACKUP, '--json', '--no-progress'], { node: oldest, cwd: workDir, env });
      const verified = await run(['verify', '--graph', GRAPH, '--json', '--no-progress'], { node: oldest, cwd: workDir, env });

      expect(version).toEqual({ code: 0, stdout: `${PKG.version}\n`, stderr: '' });
      expect(archived.stderr).toBe('');
      expect(archived.code).toBe(0);
      await expectArchived(bucket, archived.stdout);
      expect(verified.code).toBe(0);
    });
  }

  const oldNode = olderSystemNode();
  if (typeof oldNode === 'string') {
    it.skip(`on an older Node.js exits 2 with one line naming the version it needs (skipped: ${oldNode})`, () => undefined);
  } else {
    it(`on an older Node.js (${oldNode.path}, ${oldNode.version}) exits 2 with one line naming the version it needs`, async () => {
      for (const args of [['--help'], ['archive', '--graph', GRAPH, '--backup', BACKUP]]) {
        const result = await run(args, { node: oldNode.path, cwd: workDir });

        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        const lines = result.stderr.split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toContain(`needs Node.js >= ${NEEDED_NODE}`);
        expect(lines[0]).toContain(`found Node.js ${oldNode.version}`);
        expect(lines[1]).toBe('');
      }
    });
  }
});
