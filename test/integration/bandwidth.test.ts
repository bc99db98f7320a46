// --bwlimit: one token bucket for every download body of a run, composed on the undici
// dispatcher (lib/copy/bandwidth.ts). Against a bare node:http server for the rate, the abort
// and the body's own backpressure, and against the emulator and Swift for the copier's rate floor.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { Agent, type Dispatcher } from 'undici';
import { limitBandwidth } from '../../lib/copy/bandwidth.js';
import { createCopier, type CopierDeps } from '../../lib/copy/copier.js';
import { MiB } from '../../lib/copy/part-size.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { type Emulator } from '../emulator/index.js';
import { gesLinkSource, useCopyStack } from '../support/copy.js';

/** Deterministic bytes: the same `n` bytes for every request. */
const payload = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919) % 251));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('the bandwidth limit on a dispatcher', () => {
  const body = payload(2 * MiB);
  let server: Server;
  let origin: string;
  let agent: Agent;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agent = new Agent();
  });

  afterAll(async () => {
    await agent.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function download(d: Dispatcher, options: { signal?: AbortSignal; perChunkMs?: number } = {}): Promise<Buffer> {
    const res = await d.request({ origin, path: '/file', method: 'GET', ...(options.signal ? { signal: options.signal } : {}) });
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      if (options.perChunkMs) await sleep(options.perChunkMs);
    }
    return Buffer.concat(chunks);
  }

  it('holds the total rate of bodies read at once to the limit, and delivers every byte', async () => {
    // Prepare: 2 MiB/s for two 2 MiB bodies read side by side: about 2 s in all
    const { dispatcher } = limitBandwidth(agent, 2 * MiB);
    const started = performance.now();
    // Act
    const [a, b] = await Promise.all([download(dispatcher), download(dispatcher)]);
    const seconds = (performance.now() - started) / 1000;
    // Assess: 4 MiB at 2 MiB/s, less the 200 KiB burst; unlimited, it takes a few ms
    expect(sha256(a)).toBe(sha256(body));
    expect(sha256(b)).toBe(sha256(body));
    expect(seconds).toBeGreaterThan(1.7);
    expect(seconds).toBeLessThan(2.5);
  });

  it('stops at once when the request is aborted, whatever the limit still owes', async () => {
    // Prepare: at 256 KiB/s the body would take 8 s
    const { dispatcher } = limitBandwidth(agent, 256 * 1024);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('deadline')), 300);
    const started = performance.now();
    // Act
    const outcome = await download(dispatcher, { signal: ac.signal }).then(() => 'completed', (err: unknown) => err);
    // Assess
    expect(outcome).toBeInstanceOf(Error);
    expect(performance.now() - started).toBeLessThan(800);
  });

  it('works with the body\'s own backpressure: a slow reader gets every byte, in order, under both a loose and a tight limit', async () => {
    // Prepare: a limit well above what the reader takes, and one well under it
    const fast = limitBandwidth(agent, 64 * MiB).dispatcher;
    const slow = limitBandwidth(agent, 4 * MiB).dispatcher;
    // Act
    const [a, b] = await Promise.all([download(fast, { perChunkMs: 2 }), download(slow, { perChunkMs: 2 })]);
    // Assess
    expect(sha256(a)).toBe(sha256(body));
    expect(sha256(b)).toBe(sha256(body));
  });
});

describe('the copier under a bandwidth limit (emulator and Swift)', () => {
  const G = 'graph-bw';
  const B = 'backup-bw';
  const FILE = { name: 'limited.bin', bytes: 12 * MiB };
  let emu: Emulator;
  let token: string;
  let s3: S3Client;
  let bucket: string;
  let agent: Agent;

  useCopyStack('bwlimit', { graphs: [{ id: G, backups: [{ id: B, files: [FILE] }] }] }, (stack) => ({ s3, emu, token, bucket, dispatcher: agent } = stack));

  // 3 streams share 6 MiB/s: 2 MiB/s each, under a floor of 3 MiB/s over 300 ms windows.
  const floor = { bytesPerSecond: 3 * MiB, windowMs: 300 };

  function deps(dispatcher: Dispatcher, rateFloor: CopierDeps['rateFloor']): CopierDeps {
    return {
      s3, logger: silentLogger(), allowedHosts: ['127.0.0.1'], dispatcher, rateFloor,
      retry: createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 }),
      partSizeBytes: 5 * MiB, partConcurrency: 2, streams: 3, maxStalledCycles: 100,
    };
  }

  it('never takes a stream the limit slows down for a trickling source', async () => {
    // Prepare
    const { dispatcher, limiter } = limitBandwidth(agent, 6 * MiB);
    // Act
    const result = await createCopier(deps(dispatcher, { ...floor, heldMs: limiter.heldMs })).copyFile({
      bucket, key: `bw/${G}/${B}/1/${FILE.name}`, fileName: FILE.name, getLink: gesLinkSource(emu, token, G, B, FILE.name).getLink,
    });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats.resumes).toBe(0);
    expect(result.stats.streams).toBeGreaterThan(1);
  });

  it('(control) the same floor without the limit\'s clock drops the held streams and reconnects', async () => {
    // Prepare
    const { dispatcher } = limitBandwidth(agent, 6 * MiB);
    // Act
    const result = await createCopier(deps(dispatcher, floor)).copyFile({
      bucket, key: `bw/${G}/${B}/2/${FILE.name}`, fileName: FILE.name, getLink: gesLinkSource(emu, token, G, B, FILE.name).getLink,
    });
    // Assess
    expect(result.status).toBe('complete');
    expect(result.stats.resumes).toBeGreaterThanOrEqual(1);
  });
});
