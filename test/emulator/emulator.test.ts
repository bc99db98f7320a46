import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateRawSync } from 'node:zlib';
import { startEmulator, type Emulator, type EmulatorOptions } from './index.js';
import {
  gesGet, hashDownload, issueToken, linkFor, links, passwordAuthBody, rawRequest, sha256, xmlCode, xmlMessage,
} from './test-client.js';

const MiB = 1024 * 1024;
const DATA_BYTES = 3 * MiB + 1234; // crosses two 1 MiB chunk boundaries and ends mid-chunk

function spec(extra: Partial<EmulatorOptions> = {}): EmulatorOptions {
  return {
    staticTokens: ['static-token'],
    graphs: [
      {
        id: 'g-1', name: 'social',
        backups: [
          { id: 'b-1', files: [{ name: 'meta.xml', bytes: 2000 }, { name: 'data.bin', bytes: DATA_BYTES }] },
          { id: 'b-busy', status: 'backing_up', files: [{ name: 'data.bin', bytes: 10 }] },
        ],
      },
      {
        id: 'g-paged',
        backups: Array.from({ length: 23 }, (_, i) => ({ id: `p-${i}`, files: [{ name: 'f.bin', bytes: 100 }] })),
      },
    ],
    ...extra,
  };
}

async function withEmulator(opts: EmulatorOptions, fn: (emu: Emulator) => Promise<void>): Promise<void> {
  const emu = await startEmulator(opts);
  try {
    await fn(emu);
  } finally {
    await emu.close();
  }
}

describe('emulator', () => {
  let emu: Emulator;
  let token: string;

  beforeAll(async () => {
    emu = await startEmulator(spec());
    token = await issueToken(emu);
  });
  afterAll(async () => {
    await emu.close();
  });
  afterEach(() => {
    emu.faults.reset();
  });

  describe('IAM', () => {
    it('issues a project-scoped token: 201, X-Subject-Token, expires_at with microseconds', async () => {
      // Prepare
      const body = passwordAuthBody();
      // Act
      const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens?nocatalog=true`, { method: 'POST', body });
      const json = (await res.json()) as { token: { expires_at: string; issued_at: string; project: { id: string; name: string }; catalog?: unknown } };
      // Assess
      expect(res.status).toBe(201);
      expect(res.headers.get('x-subject-token')).toMatch(/^MII/);
      expect(json.token.expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(Date.parse(json.token.expires_at) - Date.parse(json.token.issued_at)).toBe(86_400_000);
      expect(json.token.project).toMatchObject({ id: emu.projectId, name: 'cn-north-4' });
      expect(json.token.catalog).toBeUndefined();
    });

    it('accepts a scope by project id', async () => {
      const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', body: passwordAuthBody(undefined, undefined, { project: { id: emu.projectId } }) });
      await res.arrayBuffer();
      expect(res.status).toBe(201);
    });

    it('refuses a wrong password with 401 and a Keystone-style body', async () => {
      const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', body: passwordAuthBody('archiver', 'nope') });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 401, message: expect.any(String) as string, title: 'Unauthorized' } });
    });

    it('counts every login attempt, and the refused ones apart', async () => {
      // Prepare
      const before = { ...emu.stats };
      // Act
      for (const password of ['nope', 'archiver-password', 'still-nope']) {
        const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', body: passwordAuthBody('archiver', password) });
        await res.arrayBuffer();
      }
      // Assess
      expect(emu.stats.tokenRequests - before.tokenRequests).toBe(3);
      expect(emu.stats.failedLogins - before.failedLogins).toBe(2);
    });

    it('refuses a request without project scope with 400', async () => {
      const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', body: passwordAuthBody(undefined, undefined, null) });
      await res.arrayBuffer();
      expect(res.status).toBe(400);
    });

    it('lists projects by name', async () => {
      const hit = await gesGet(emu, '/v3/projects?name=cn-north-4', token);
      const miss = await gesGet(emu, '/v3/projects?name=eu-west-101', token);
      expect((hit.body as { projects: { id: string }[] }).projects.map((p) => p.id)).toEqual([emu.projectId]);
      expect((miss.body as { projects: unknown[] }).projects).toEqual([]);
    });
  });

  describe('GES authentication', () => {
    it('answers 401 APIGW.0301 without X-Auth-Token', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, undefined);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error_code: 'APIGW.0301', error_msg: 'Incorrect IAM authentication information: x-auth-token not found' });
    });

    it('answers 400 GES.0016 when the URL names another project', async () => {
      const res = await gesGet(emu, '/v2/0123456789abcdef0123456789abcdef/graphs/g-1/backups', token);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error_code: 'GES.0016', error_msg: 'Resource not found' });
    });

    it('accepts static tokens', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, 'static-token');
      expect(res.status).toBe(200);
    });
  });

  describe('backup lists', () => {
    it('pages with offset/limit, default limit 10, snake_case v2 fields', async () => {
      // Act
      const first = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups`, token);
      const last = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=20&limit=10`, token);
      // Assess
      const a = first.body as { backup_count: number; backup_list: Record<string, unknown>[] };
      const b = last.body as { backup_count: number; backup_list: Record<string, unknown>[] };
      expect(a.backup_count).toBe(23);
      expect(a.backup_list.map((x) => x.id)).toEqual(Array.from({ length: 10 }, (_, i) => `p-${i}`));
      expect(b.backup_list.map((x) => x.id)).toEqual(['p-20', 'p-21', 'p-22']);
      expect(a.backup_list[0]).toMatchObject({
        graph_id: 'g-paged', status: 'success', backup_method: 'manual', size: 1, encrypted: false,
        start_timestamp: expect.any(Number) as number, start_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/) as string,
      });
    });

    it('lists all backups of the project', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/backups?limit=100`, token);
      expect((res.body as { backup_count: number }).backup_count).toBe(25);
    });

    it('serves the v1.0 list in camelCase', async () => {
      const res = await gesGet(emu, `/v1.0/${emu.projectId}/graphs/g-1/backups`, token);
      expect(res.body).toMatchObject({ backupCount: 2, backupList: [{ id: 'b-1', graphId: 'g-1', startTimestamp: expect.any(Number) as number }, { id: 'b-busy' }] });
    });

    it('answers GES.7000 for an unknown graph', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/nope/backups`, token);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'GES.7000' });
    });

    it('counts list requests', async () => {
      const before = emu.stats.listRequests;
      await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, token);
      expect(emu.stats.listRequests).toBe(before + 1);
    });
  });

  describe('backup-files', () => {
    it('returns bucket, size in KB, a signed link and link_expired_time (+0800)', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backup-files?backup_id=b-1`, token);
      const body = res.body as { bucket: string; files: { name: string; size: number; download_link: string; link_expired_time: string }[] };
      expect(res.status).toBe(200);
      expect(body.bucket).toBe('ges-backup-cn-north-4');
      expect(body.files.map((f) => [f.name, f.size])).toEqual([['meta.xml', 2], ['data.bin', Math.ceil(DATA_BYTES / 1024)]]);
      expect(body.files[0]?.download_link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ges-backup-cn-north-4\/g-1\/b-1\/meta\.xml\?AccessKeyId=\w+&Expires=\d+&Signature=/);
      expect(body.files[0]?.link_expired_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0800$/);
    });

    it('issues signatures whose encoding contains %2B, %2F and %3D', async () => {
      const files = await links(emu, token, 'g-1', 'b-1');
      for (const f of files) {
        const sig = /Signature=([^&]*)/.exec(f.download_link)?.[1] ?? '';
        expect(sig).toContain('%2B');
        expect(sig).toContain('%2F');
        expect(sig).toContain('%3D');
      }
    });

    it.each([
      ['nope', 'b-1', 'error_code', 'GES.7000'],
      ['g-1', 'nope', 'error_code', 'GES.7024'],
      ['g-1', 'b-busy', 'error_code', 'GES.7040'],
    ])('graph %s backup %s → 400 %s %s', async (graph, backup, key, code) => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/${graph}/backup-files?backup_id=${backup}`, token);
      expect(res.status).toBe(400);
      expect((res.body as Record<string, unknown>)[key]).toBe(code);
    });

    it('answers GES.7049 in the camelCase shape when backup_id is missing', async () => {
      const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backup-files`, token);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ errorCode: 'GES.7049', errorMessage: 'The parameter [backup_id] is not exist.' });
    });

    it.each([
      ['zoneless', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/],
      ['z', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/],
      ['malformed', /^\d{4}-\d\d-0\d\dT\d\d:\d\d:\d\d\+0800$/],
    ] as const)('formats link_expired_time as %s', async (format, pattern) => {
      await withEmulator(spec({ linkExpiredTimeFormat: format, fileSizeAsString: true }), async (e) => {
        const [file] = await links(e, 'static-token', 'g-1', 'b-1');
        expect(file?.link_expired_time).toMatch(pattern);
        expect(file?.size).toBe('2');
      });
    });

    it('omits link_expired_time when asked to', async () => {
      await withEmulator(spec({ linkExpiredTimeFormat: 'absent' }), async (e) => {
        const [file] = await links(e, 'static-token', 'g-1', 'b-1');
        expect(file && 'link_expired_time' in file).toBe(false);
      });
    });
  });

  describe('OBS downloads', () => {
    it('serves the full object with OBS headers and the content fileSha256 announces', async () => {
      // Prepare
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      // Act
      const res = await rawRequest(url);
      // Assess
      expect(res.status).toBe(200);
      expect(res.complete).toBe(true);
      expect(res.body.length).toBe(DATA_BYTES);
      expect(sha256(res.body)).toBe(emu.fileSha256('g-1', 'b-1', 'data.bin'));
      expect(res.headers).toMatchObject({
        server: 'OBS', 'accept-ranges': 'bytes', 'content-type': 'binary/octet-stream',
        'content-length': String(DATA_BYTES), etag: emu.fileEtag('g-1', 'b-1', 'data.bin'),
      });
      expect(res.headers['x-obs-request-id']).toMatch(/^[0-9A-F]{32}$/);
      expect(res.headers['x-obs-id-2']).toBeDefined();
      expect(Date.parse(res.headers['last-modified'] ?? '')).not.toBeNaN();
    });

    it('serves ranges as 206 with the same bytes as the full body', async () => {
      // Prepare
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      const full = (await rawRequest(url)).body;
      const cases: [string, number, number][] = [
        ['bytes=0-0', 0, 1],
        [`bytes=${MiB - 10}-${MiB + 40}`, MiB - 10, MiB + 41], // across a chunk stamp
        [`bytes=${2 * MiB}-`, 2 * MiB, DATA_BYTES],
        ['bytes=-100', DATA_BYTES - 100, DATA_BYTES],
        [`bytes=5-${DATA_BYTES * 2}`, 5, DATA_BYTES], // end clamped
      ];
      for (const [range, start, end] of cases) {
        // Act
        const res = await rawRequest(url, { headers: { Range: range } });
        // Assess
        expect(res.status).toBe(206);
        expect(res.headers['content-range']).toBe(`bytes ${start}-${end - 1}/${DATA_BYTES}`);
        expect(res.body.equals(full.subarray(start, end))).toBe(true);
      }
    });

    it('answers 416 InvalidRange from the end on, and 200 for malformed ranges', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const past = await rawRequest(url, { headers: { Range: 'bytes=2000-' } });
      const malformed = await rawRequest(url, { headers: { Range: 'bytes=abc' } });
      const inverted = await rawRequest(url, { headers: { Range: 'bytes=50-10' } });
      expect(past.status).toBe(416);
      expect(xmlCode(past.body)).toBe('InvalidRange');
      expect(past.headers['content-range']).toBe('bytes */2000');
      expect([malformed.status, malformed.body.length]).toEqual([200, 2000]);
      expect([inverted.status, inverted.body.length]).toEqual([200, 2000]);
    });

    it('refuses HEAD on a GET-signed link with SignatureDoesNotMatch', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const res = await rawRequest(url, { method: 'HEAD' });
      expect(res.status).toBe(403);
    });

    it.each([
      ['%2B re-encoded as +', (u: string) => u.replace('%2B', '+')],
      ['lower-case escapes', (u: string) => u.replace('%2F', '%2f')],
      ['decoded slash', (u: string) => u.replace('%2F', '/')],
      ['an extra parameter', (u: string) => `${u}&x-obs-foo=1`],
      ['a later Expires', (u: string) => u.replace(/Expires=(\d+)/, (_, e: string) => `Expires=${Number(e) + 60}`)],
      ['another object', (u: string) => u.replace('meta.xml', 'data.bin')],
      ['reordered parameters', (u: string) => u.replace(/\?(AccessKeyId=[^&]*)&(Expires=[^&]*)/, '?$2&$1')],
    ])('refuses a link with %s', async (_, tamper) => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const res = await rawRequest(tamper(url));
      expect(res.status).toBe(403);
      expect(xmlCode(res.body)).toBe('SignatureDoesNotMatch');
    });

    it('refuses a request without a signature with AccessDenied', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const res = await rawRequest(url.slice(0, url.indexOf('?')));
      expect([res.status, xmlCode(res.body)]).toEqual([403, 'AccessDenied']);
    });

    it('answers 412 PreconditionFailed on an If-Match mismatch, 200 on a match', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const etag = emu.fileEtag('g-1', 'b-1', 'meta.xml');
      const ok = await rawRequest(url, { headers: { 'If-Match': etag, Range: 'bytes=0-9' } });
      const bad = await rawRequest(url, { headers: { 'If-Match': '"0123"' } });
      expect(ok.status).toBe(206);
      expect(bad.status).toBe(412);
      expect(xmlCode(bad.body)).toBe('PreconditionFailed');
      expect(bad.body.toString()).toContain('<Condition>If-Match</Condition>');
    });

    it('counts requests by Host, range requests and bytes by file name', async () => {
      // Prepare
      emu.resetStats();
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      // Act
      await rawRequest(url, { headers: { Range: 'bytes=0-99', 'X-Auth-Token': token } });
      // Assess
      const obsHost = new URL(emu.obsEndpoint).host;
      expect(emu.stats.requestsByHost.get(obsHost)).toBe(1);
      expect(emu.stats.requestsByHost.get(new URL(emu.gesEndpoint).host)).toBe(1);
      expect(emu.stats).toMatchObject({ linkRequests: 1, downloadRequests: 1, rangeRequests: 1, authHeadersSentToObs: 1 });
      expect(emu.stats.downloadBytes.get('meta.xml')).toBe(100);
    });
  });

  describe('content', () => {
    it('is deterministic across emulators and differs by seed', async () => {
      const same = await startEmulator(spec());
      const seeded = await startEmulator({ graphs: [{ id: 'g-1', backups: [{ id: 'b-1', files: [{ name: 'data.bin', bytes: DATA_BYTES, seed: 'x' }] }] }] });
      try {
        expect(same.fileSha256('g-1', 'b-1', 'data.bin')).toBe(emu.fileSha256('g-1', 'b-1', 'data.bin'));
        expect(same.fileEtag('g-1', 'b-1', 'data.bin')).toBe(emu.fileEtag('g-1', 'b-1', 'data.bin'));
        expect(seeded.fileSha256('g-1', 'b-1', 'data.bin')).not.toBe(emu.fileSha256('g-1', 'b-1', 'data.bin'));
      } finally {
        await Promise.all([same.close(), seeded.close()]);
      }
    });

    it('looks random: not zeros, not compressible', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      const body = (await rawRequest(url)).body;
      expect(body.some((b) => b !== 0)).toBe(true);
      expect(deflateRawSync(body).length).toBeGreaterThan(body.length * 0.99);
      expect(body.subarray(0, MiB).equals(body.subarray(MiB, 2 * MiB))).toBe(false);
    });

    it('serves a real file given by path', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ges-emu-'));
      try {
        const path = join(dir, 'schema.xml');
        writeFileSync(path, '<schema/>\n'.repeat(1000));
        await withEmulator({ staticTokens: ['t'], graphs: [{ id: 'g', backups: [{ id: 'b', files: [{ name: 'schema.xml', path }] }] }] }, async (e) => {
          const url = await linkFor(e, 't', 'g', 'b', 'schema.xml');
          const full = await rawRequest(url);
          const part = await rawRequest(url, { headers: { Range: 'bytes=10-19' } });
          expect(sha256(full.body)).toBe(e.fileSha256('g', 'b', 'schema.xml'));
          expect(e.fileBytes('g', 'b', 'schema.xml')).toBe(10_000);
          expect(part.body.toString()).toBe('<schema/>\n');
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('streams large files without holding them in memory', async () => {
      await withEmulator({ graphs: [{ id: 'g', backups: [{ id: 'b', files: [{ name: 'big.bin', bytes: 256 * MiB }] }] }], staticTokens: ['t'] }, async (e) => {
        const url = await linkFor(e, 't', 'g', 'b', 'big.bin');
        const before = process.memoryUsage().rss;
        const res = await hashDownload(url);
        expect(res.bytes).toBe(256 * MiB);
        expect(res.sha256).toBe(e.fileSha256('g', 'b', 'big.bin'));
        expect(process.memoryUsage().rss - before).toBeLessThan(128 * MiB);
      });
    });
  });

  describe('link styles', () => {
    it.each(['s3-v2', 's3-v4'] as const)('%s links download, refuse HEAD and refuse tampering', async (style) => {
      await withEmulator(spec({ linkStyle: style }), async (e) => {
        const url = await linkFor(e, 'static-token', 'g-1', 'b-1', 'meta.xml');
        expect(url).toContain(style === 's3-v2' ? 'AWSAccessKeyId=' : 'X-Amz-Signature=');
        expect((await rawRequest(url)).status).toBe(200);
        expect((await rawRequest(url, { method: 'HEAD' })).status).toBe(403);
        const tampered = await rawRequest(`${url}&extra=1`);
        expect([tampered.status, xmlCode(tampered.body)]).toEqual([403, 'SignatureDoesNotMatch']);
      });
    });

    it('s3-v4 links expire after X-Amz-Expires', async () => {
      await withEmulator(spec({ linkStyle: 's3-v4', linkTtlSeconds: 1 }), async (e) => {
        const url = await linkFor(e, 'static-token', 'g-1', 'b-1', 'meta.xml');
        await sleep(2100);
        const res = await rawRequest(url);
        expect([res.status, xmlMessage(res.body)]).toEqual([403, 'Request has expired']);
      });
    });

    it('puts linkHost in links; requests elsewhere never reach it', async () => {
      await withEmulator(spec({ linkHost: 'localhost' }), async (e) => {
        const url = await linkFor(e, 'static-token', 'g-1', 'b-1', 'meta.xml');
        const port = new URL(e.obsEndpoint).port;
        expect(new URL(url).host).toBe(`localhost:${port}`);
        expect(e.stats.requestsByHost.get(`localhost:${port}`)).toBeUndefined();
      });
    });
  });

  describe('expiry', () => {
    it('serves a link until it expires, then 403 AccessDenied "Request has expired"', async () => {
      await withEmulator(spec({ linkTtlSeconds: 1 }), async (e) => {
        // Prepare
        const url = await linkFor(e, 'static-token', 'g-1', 'b-1', 'meta.xml');
        // Act
        const fresh = await rawRequest(url);
        await sleep(2100);
        const stale = await rawRequest(url);
        // Assess
        expect(fresh.status).toBe(200);
        expect(stale.status).toBe(403);
        expect(xmlCode(stale.body)).toBe('AccessDenied');
        expect(xmlMessage(stale.body)).toBe('Request has expired');
        expect(stale.headers['content-type']).toBe('application/xml');
      });
    });
  });

  describe('faults', () => {
    it('failGes: 429 with Retry-After on the next list only', async () => {
      // Prepare
      emu.faults.failGes('list', { status: 429, body: { error_msg: 'The throttling threshold has been reached', error_code: 'APIGW.0308' }, headers: { 'Retry-After': '2' } });
      // Act
      const first = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, token);
      const second = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, token);
      // Assess
      expect(first.status).toBe(429);
      expect(first.headers.get('retry-after')).toBe('2');
      expect(first.body).toMatchObject({ error_code: 'APIGW.0308' });
      expect(second.status).toBe(200);
    });

    it('failGes: counted, non-JSON body, matched by op', async () => {
      emu.faults.failGes('links', { status: 503, body: '<html>Service Unavailable</html>' }, 2);
      const list = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backups`, token);
      const a = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backup-files?backup_id=b-1`, token);
      const b = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backup-files?backup_id=b-1`, token);
      const c = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-1/backup-files?backup_id=b-1`, token);
      expect([list.status, a.status, b.status, c.status]).toEqual([200, 503, 503, 200]);
      expect(a.text).toBe('<html>Service Unavailable</html>');
    });

    it('ignoreListOffset: every page starts at the first backup, with the true backup_count, until reset', async () => {
      // Prepare
      emu.faults.ignoreListOffset();
      // Act
      const first = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=0&limit=10`, token);
      const second = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=10&limit=10`, token);
      emu.faults.reset();
      const honoured = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=10&limit=10`, token);
      // Assess
      const ids = (r: { body: unknown }): unknown[] => (r.body as { backup_list: { id: string }[] }).backup_list.map((b) => b.id);
      expect(ids(first)).toEqual(Array.from({ length: 10 }, (_, i) => `p-${i}`));
      expect(ids(second)).toEqual(ids(first));
      expect((second.body as { backup_count: number }).backup_count).toBe(23);
      expect(ids(honoured)).toEqual(Array.from({ length: 10 }, (_, i) => `p-${i + 10}`));
    });

    it('ignoreListOffset(times): counted', async () => {
      emu.faults.ignoreListOffset(1);
      const ignored = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=20`, token);
      const honoured = await gesGet(emu, `/v2/${emu.projectId}/graphs/g-paged/backups?offset=20`, token);
      expect((ignored.body as { backup_list: unknown[] }).backup_list).toHaveLength(10);
      expect((honoured.body as { backup_list: unknown[] }).backup_list).toHaveLength(3);
    });

    it('failGes: token and any', async () => {
      emu.faults.failGes('token', { status: 500, body: { error: { code: 500, message: 'boom', title: 'Internal Server Error' } } });
      emu.faults.failGes('any', { status: 408, body: { error_code: 'GES.7005', error_msg: 'The underlying service of the graph engine is unavailable.' } });
      const tokenRes = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', body: passwordAuthBody() });
      await tokenRes.arrayBuffer();
      const anyRes = await gesGet(emu, `/v2/${emu.projectId}/graphs`, token);
      expect([tokenRes.status, anyRes.status]).toEqual([500, 408]);
    });

    it('invalidateTokens: 401 APIGW.0307 until a new token is issued', async () => {
      await withEmulator(spec(), async (e) => {
        const old = await issueToken(e);
        e.faults.invalidateTokens();
        const refused = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/backups`, old);
        const renewed = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/backups`, await issueToken(e));
        const staticStill = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/backups`, 'static-token');
        expect(refused.status).toBe(401);
        expect(refused.body).toMatchObject({ error_code: 'APIGW.0307', error_msg: 'The token must be updated.' });
        expect(renewed.status).toBe(200);
        expect(staticStill.status).toBe(200);
      });
    });

    it('truncateDownload: full Content-Length, then the connection is cut', async () => {
      // Prepare
      emu.faults.truncateDownload('data.bin', 100_000);
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      // Act
      const cut = await rawRequest(url);
      const whole = await rawRequest(url);
      // Assess
      expect(cut.headers['content-length']).toBe(String(DATA_BYTES));
      expect(cut.complete).toBe(false);
      expect(cut.body.length).toBe(100_000);
      expect(cut.body.equals(whole.body.subarray(0, 100_000))).toBe(true);
      expect(whole.complete).toBe(true);
    });

    it('expireLinksAfterBytes: cut mid-file, old links expire, new links work', async () => {
      // Prepare
      const oldUrl = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      emu.faults.expireLinksAfterBytes('data.bin', 5000);
      // Act
      const cut = await rawRequest(oldUrl);
      const retryOld = await rawRequest(oldUrl, { headers: { Range: 'bytes=5000-' } });
      const newUrl = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      const retryNew = await rawRequest(newUrl, { headers: { Range: 'bytes=5000-' } });
      // Assess
      expect([cut.complete, cut.body.length]).toEqual([false, 5000]);
      expect([retryOld.status, xmlMessage(retryOld.body)]).toEqual([403, 'Request has expired']);
      expect(retryNew.status).toBe(206);
      expect(sha256(Buffer.concat([cut.body, retryNew.body]))).toBe(emu.fileSha256('g-1', 'b-1', 'data.bin'));
    });

    it('throttleDownloads: caps the rate, null lifts it', async () => {
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      emu.faults.throttleDownloads(1024 * 1024);
      const t0 = Date.now();
      const slow = await rawRequest(url, { headers: { Range: 'bytes=0-524287' } });
      const slowMs = Date.now() - t0;
      emu.faults.throttleDownloads(null);
      const t1 = Date.now();
      await rawRequest(url, { headers: { Range: 'bytes=0-524287' } });
      expect(slow.body.length).toBe(512 * 1024);
      expect(slowMs).toBeGreaterThanOrEqual(400);
      expect(Date.now() - t1).toBeLessThan(slowMs);
    });

    it('malformedLinkExpiredTime: responses carry the literal value until reset', async () => {
      emu.faults.malformedLinkExpiredTime('not-a-date');
      const a = await links(emu, token, 'g-1', 'b-1');
      const b = await links(emu, token, 'g-1', 'b-1');
      emu.faults.reset();
      const c = await links(emu, token, 'g-1', 'b-1');
      expect([a[0]?.link_expired_time, b[1]?.link_expired_time]).toEqual(['not-a-date', 'not-a-date']);
      expect(c[0]?.link_expired_time).not.toBe('not-a-date');
    });

    it('obsStatus: 503 SlowDown XML, then served', async () => {
      emu.faults.obsStatus('meta.xml', 503, 1);
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'meta.xml');
      const first = await rawRequest(url);
      const second = await rawRequest(url);
      expect([first.status, xmlCode(first.body)]).toEqual([503, 'SlowDown']);
      expect(second.status).toBe(200);
    });

    it('changeFile: new content and ETag; If-Match with the old ETag → 412; reset restores', async () => {
      // Prepare
      const url = await linkFor(emu, token, 'g-1', 'b-1', 'data.bin');
      const oldEtag = emu.fileEtag('g-1', 'b-1', 'data.bin');
      const oldSha = emu.fileSha256('g-1', 'b-1', 'data.bin');
      // Act
      emu.faults.changeFile('g-1', 'b-1', 'data.bin', 'v2');
      const resumed = await rawRequest(url, { headers: { Range: 'bytes=100-', 'If-Match': oldEtag } });
      const newSha = emu.fileSha256('g-1', 'b-1', 'data.bin');
      const fresh = await hashDownload(url);
      emu.faults.reset();
      // Assess
      expect(resumed.status).toBe(412);
      expect(emu.fileEtag('g-1', 'b-1', 'data.bin')).toBe(oldEtag);
      expect(newSha).not.toBe(oldSha);
      expect(fresh.sha256).toBe(newSha);
      expect(emu.fileSha256('g-1', 'b-1', 'data.bin')).toBe(oldSha);
    });
  });

  describe('backup import and job status', () => {
    async function postImport(e: Emulator, graphId: string, body: unknown, token: string | null = 'static-token'): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await fetch(`${e.gesEndpoint}/v2/${e.projectId}/graphs/${graphId}/backups/import`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(token === null ? {} : { 'X-Auth-Token': token }) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }

    async function jobStatus(e: Emulator, graphId: string, jobId: string): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await gesGet(e, `/v2/${e.projectId}/graphs/${graphId}/jobs/${jobId}/status`, 'static-token');
      return { status: res.status, body: res.body as Record<string, unknown> };
    }

    it('runs an import job: pending, running, then success after importPollsUntilDone polls, and lists the imported backup', async () => {
      await withEmulator(spec({ importPollsUntilDone: 3 }), async (e) => {
        // Act
        const started = await postImport(e, 'g-1', { import_path: 'restore-bucket/g-1/b-1' });
        const jobId = started.body.job_id as string;
        const polls = [];
        for (let i = 0; i < 4; i++) polls.push((await jobStatus(e, 'g-1', jobId)).body);
        const list = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/backups`, 'static-token');
        // Assess
        expect(started.status).toBe(200);
        expect(jobId).toMatch(/^[0-9a-f]{32}$/);
        expect(polls.map((p) => p.status)).toEqual(['pending', 'running', 'success', 'success']);
        expect(polls[2]).toMatchObject({ job_id: jobId, job_type: 'ImportBackup', related_graph: 'social', job_progress: 100 });
        expect(polls[2]!.fail_reason).toBeUndefined();
        expect(e.stats.imports).toEqual([{ graphId: 'g-1', importPath: 'restore-bucket/g-1/b-1', jobId }]);
        expect(e.stats.jobStatusRequests).toBe(4);
        const imported = (list.body as { backup_list: { backup_method: string; status: string }[] }).backup_list.filter((b) => b.backup_method === 'import');
        expect(imported).toHaveLength(1);
        expect(imported[0]!.status).toBe('success');
      });
    });

    it('fails the next import job with the fail_reason given to faults.failImport, and only that one', async () => {
      await withEmulator(spec({ importPollsUntilDone: 1 }), async (e) => {
        // Prepare
        e.faults.failImport('The backup files in OBS were modified.');
        // Act
        const failing = (await postImport(e, 'g-1', { import_path: 'b/p' })).body.job_id as string;
        const next = (await postImport(e, 'g-1', { import_path: 'b/q' })).body.job_id as string;
        const failed = await jobStatus(e, 'g-1', failing);
        const again = await jobStatus(e, 'g-1', failing);
        const ok = await jobStatus(e, 'g-1', next);
        // Assess
        expect(failed.body).toMatchObject({ status: 'failed', fail_reason: 'The backup files in OBS were modified.' });
        expect(again.body.status).toBe('failed');
        expect(ok.body.status).toBe('success');
      });
    });

    it('asks the verifyImport hook about the import path and fails the job with its reason', async () => {
      const asked: string[] = [];
      await withEmulator(spec({
        importPollsUntilDone: 1,
        verifyImport: (importPath, graphId) => {
          asked.push(`${graphId}:${importPath}`);
          return Promise.resolve(importPath.endsWith('/empty') ? 'No backup files found in the import path.' : undefined);
        },
      }), async (e) => {
        // Act
        const bad = (await postImport(e, 'g-1', { import_path: 'bucket/empty' })).body.job_id as string;
        const good = (await postImport(e, 'g-1', { import_path: 'bucket/full' })).body.job_id as string;
        // Assess
        expect((await jobStatus(e, 'g-1', bad)).body).toMatchObject({ status: 'failed', fail_reason: 'No backup files found in the import path.' });
        expect((await jobStatus(e, 'g-1', good)).body.status).toBe('success');
        expect(asked).toEqual(['g-1:bucket/empty', 'g-1:bucket/full']);
      });
    });

    it('refuses an import path with a scheme or a trailing slash, an empty or missing one, an unknown graph, and no token', async () => {
      await withEmulator(spec(), async (e) => {
        // Act
        const answers = await Promise.all([
          postImport(e, 'g-1', { import_path: 'obs://bucket/prefix' }),
          postImport(e, 'g-1', { import_path: 'bucket/prefix/' }),
          postImport(e, 'g-1', { import_path: '' }),
          postImport(e, 'g-1', {}),
          postImport(e, 'g-1', 'not json'),
          postImport(e, 'nope', { import_path: 'bucket/prefix' }),
          postImport(e, 'g-1', { import_path: 'bucket/prefix' }, null),
        ]);
        // Assess
        expect(answers.map((a) => [a.status, a.body.error_code])).toEqual([
          [400, 'GES.7011'], [400, 'GES.7011'], [400, 'GES.7050'], [400, 'GES.7050'], [400, 'GES.7016'], [400, 'GES.7000'], [401, 'APIGW.0301'],
        ]);
        expect(e.stats.imports).toEqual([]);
      });
    });

    it('answers GES.7007 for an unknown job and for a job of another graph', async () => {
      await withEmulator(spec(), async (e) => {
        // Prepare
        const jobId = (await postImport(e, 'g-1', { import_path: 'bucket/prefix' })).body.job_id as string;
        // Act
        const unknown = await jobStatus(e, 'g-1', 'ffffffffffffffffffffffffffffffff');
        const otherGraph = await jobStatus(e, 'g-paged', jobId);
        // Assess
        expect([unknown.status, unknown.body.error_code]).toEqual([400, 'GES.7007']);
        expect([otherGraph.status, otherGraph.body.error_code]).toEqual([400, 'GES.7007']);
      });
    });

    it('injects faults on import and job requests separately', async () => {
      await withEmulator(spec(), async (e) => {
        // Prepare
        e.faults.failGes('import', { status: 429, body: { error_code: 'APIGW.0308', error_msg: 'throttled' } });
        e.faults.failGes('job', { status: 503 });
        // Act
        const throttled = await postImport(e, 'g-1', { import_path: 'bucket/prefix' });
        const started = await postImport(e, 'g-1', { import_path: 'bucket/prefix' });
        const unavailable = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/jobs/${started.body.job_id as string}/status`, 'static-token');
        const answered = await jobStatus(e, 'g-1', started.body.job_id as string);
        // Assess
        expect(throttled.status).toBe(429);
        expect(started.status).toBe(200);
        expect(unavailable.status).toBe(503);
        expect(answered.status).toBe(200);
        expect(e.stats.importRequests).toBe(1);
      });
    });
  });

  describe('addBackup', () => {
    it('makes a new backup visible in the list and downloadable', async () => {
      await withEmulator(spec(), async (e) => {
        e.addBackup('g-1', { id: 'b-new', files: [{ name: 'x.bin', bytes: 10 }] });
        const list = await gesGet(e, `/v2/${e.projectId}/graphs/g-1/backups`, 'static-token');
        const url = await linkFor(e, 'static-token', 'g-1', 'b-new', 'x.bin');
        expect((list.body as { backup_list: { id: string }[] }).backup_list.map((b) => b.id)).toContain('b-new');
        expect((await rawRequest(url)).body.length).toBe(10);
      });
    });
  });
});
