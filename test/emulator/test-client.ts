// Small HTTP helpers for the emulator's own tests (not a GES client: the real one lives in lib/).
import { createHash } from 'node:crypto';
import { get, request, type IncomingHttpHeaders } from 'node:http';
import type { Emulator } from './index.js';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** False when the connection was cut before the announced body was complete. */
  complete: boolean;
}

/** A plain GET (or other verb) that never throws on a cut connection, and never re-encodes the URL. */
export function rawRequest(url: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined); // a cut connection is reported through `complete`
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Streams a GET into a SHA-256 without keeping the body. */
export function hashDownload(url: string): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A password-method token request; `scope: null` sends none. */
export function passwordAuthBody(user = 'archiver', password = 'archiver-password', scope: unknown = { project: { name: 'cn-north-4' } }): string {
  return JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: 'example-domain' } } } },
      ...(scope === null ? {} : { scope }),
    },
  });
}

export async function issueToken(emu: Emulator): Promise<string> {
  const res = await fetch(`${emu.iamEndpoint}/v3/auth/tokens`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: passwordAuthBody() });
  await res.arrayBuffer();
  const token = res.headers.get('x-subject-token');
  if (res.status !== 201 || token === null) throw new Error(`token request failed: ${res.status}`);
  return token;
}

export async function gesGet(emu: Emulator, path: string, token: string | undefined): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const res = await fetch(`${emu.gesEndpoint}${path}`, { headers: token === undefined ? {} : { 'X-Auth-Token': token } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

export interface LinkFile {
  name: string;
  size: number | string;
  download_link: string;
  link_expired_time?: string;
}

export async function links(emu: Emulator, token: string, graphId: string, backupId: string): Promise<LinkFile[]> {
  const res = await gesGet(emu, `/v2/${emu.projectId}/graphs/${graphId}/backup-files?backup_id=${backupId}`, token);
  if (res.status !== 200) throw new Error(`backup-files failed: ${res.status} ${res.text}`);
  return (res.body as { files: LinkFile[] }).files;
}

export async function linkFor(emu: Emulator, token: string, graphId: string, backupId: string, name: string): Promise<string> {
  const file = (await links(emu, token, graphId, backupId)).find((f) => f.name === name);
  if (!file) throw new Error(`no link for ${name}`);
  return file.download_link;
}

export function xmlCode(body: Buffer): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString('utf8'))?.[1];
}

export function xmlMessage(body: Buffer): string | undefined {
  return /<Message>([^<]*)<\/Message>/.exec(body.toString('utf8'))?.[1];
}
