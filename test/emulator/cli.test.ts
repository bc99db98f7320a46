// The emulator as a process (test/emulator/cli.ts), as the benchmark starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rawRequest } from './test-client.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'cli.ts');
const TOKEN = 'cli-token';
const graphs = [{ id: 'g', backups: [{ id: 'b', files: [{ name: 'data.bin', bytes: 1024 * 1024 }] }] }];

interface Started {
  endpoints?: { gesEndpoint: string; projectId: string };
  exitCode: Promise<number>;
  stderr: () => string;
  stop(): void;
}

/** Every CLI process a test started, so none outlives its test even when an assertion fails first. */
const children = new Set<ChildProcess>();

function startCli(dir: string, spec: unknown): Promise<Started> {
  const specPath = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(specPath, JSON.stringify(spec));
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--spec', specPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exitCode = new Promise<number>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code ?? 1);
  }));
  const base = { exitCode, stderr: () => stderr, stop: () => { child.kill('SIGTERM'); } };
  return new Promise((resolve) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ ...base, endpoints: JSON.parse(line) as Started['endpoints'] }));
    void exitCode.then(() => resolve(base));
  });
}

async function firstLink(endpoints: { gesEndpoint: string; projectId: string }): Promise<string> {
  const res = await fetch(`${endpoints.gesEndpoint}/v2/${endpoints.projectId}/graphs/g/backup-files?backup_id=b`, { headers: { 'X-Auth-Token': TOKEN } });
  const body = (await res.json()) as { files: { download_link: string }[] };
  const link = body.files[0]?.download_link;
  if (link === undefined) throw new Error('no link');
  return link;
}

describe('emulator CLI', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'ges-emu-cli-')); });
  afterEach(() => {
    for (const child of children) child.kill('SIGKILL');
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('spec throttleDownloads caps a download from the start (the benchmark\'s capped source)', async () => {
    // Prepare: 256 KiB/s, so 384 KiB cannot arrive in under 1.5 s (unthrottled it takes milliseconds)
    const emu = await startCli(dir, { staticTokens: [TOKEN], throttleDownloads: 256 * 1024, graphs });
    try {
      const link = await firstLink(emu.endpoints ?? { gesEndpoint: '', projectId: '' });
      // Act
      const t0 = Date.now();
      const res = await rawRequest(link, { headers: { Range: 'bytes=0-393215' } });
      const ms = Date.now() - t0;
      // Assess
      expect([res.status, res.body.length, res.complete]).toEqual([206, 384 * 1024, true]);
      expect(ms).toBeGreaterThanOrEqual(1400);
    } finally {
      emu.stop();
      await emu.exitCode;
    }
  });

  it.each([
    [-1, 'positive'],
    ['fast', 'number of bytes per second'],
  ])('rejects throttleDownloads %p: exit 1, the field named', async (value, words) => {
    // Act
    const emu = await startCli(dir, { staticTokens: [TOKEN], throttleDownloads: value, graphs });
    // Assess
    expect(emu.endpoints).toBeUndefined();
    expect(await emu.exitCode).toBe(1);
    expect(emu.stderr()).toContain('"throttleDownloads" must be a');
    expect(emu.stderr()).toContain(words);
  });
});
