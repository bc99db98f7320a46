// Runs the CLI in-process (cli/main.ts) with captured stdout/stderr, and builds the
// environment that points it at the GES emulator and the local S3 store.
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../cli/main.js';
import type { Emulator } from '../emulator/index.js';
import { DEFAULT_ACCESS_KEY, DEFAULT_USER } from '../emulator/index.js';
import { s3Endpoint } from './aws.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

export async function runCli(argv: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main({
    argv,
    env,
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The SDK reads its endpoint and checksum settings from process.env; point them at Swift. */
export function useLocalS3(): void {
  process.env.AWS_ENDPOINT_URL_S3 = s3Endpoint();
  process.env.AWS_REQUEST_CHECKSUM_CALCULATION = 'WHEN_REQUIRED';
  process.env.AWS_RESPONSE_CHECKSUM_VALIDATION = 'WHEN_REQUIRED';
}

/** What every test run of the CLI shares: the bucket, the emulator's link host, small parts. */
function commonEnv(emulator: Emulator, bucket: string): Record<string, string> {
  return {
    GES_ENDPOINT: emulator.gesEndpoint,
    ARCHIVE_BUCKET: bucket,
    DOWNLOAD_ALLOWED_HOSTS: '127.0.0.1',
    S3_FORCE_PATH_STYLE: 'true',
    ARCHIVE_PART_SIZE_MB: '5',
    GES_REQUEST_TIMEOUT_MS: '10000',
    LOG_LEVEL: 'warn',
  };
}

export function iamEnv(emulator: Emulator, bucket: string): Record<string, string | undefined> {
  return {
    ...commonEnv(emulator, bucket),
    HWC_IAM_ENDPOINT: emulator.iamEndpoint,
    HWC_USERNAME: DEFAULT_USER.name,
    HWC_PASSWORD: DEFAULT_USER.password,
    HWC_DOMAIN: DEFAULT_USER.domain,
    HWC_PROJECT: emulator.projectName,
  };
}

export function tokenEnv(emulator: Emulator, bucket: string, token: string): Record<string, string | undefined> {
  return {
    ...commonEnv(emulator, bucket),
    GES_PROJECT_ID: emulator.projectId,
    GES_AUTH_TOKEN: token,
  };
}

export function akskEnv(emulator: Emulator, bucket: string): Record<string, string | undefined> {
  return {
    ...commonEnv(emulator, bucket),
    GES_PROJECT_ID: emulator.projectId,
    HWC_AK: DEFAULT_ACCESS_KEY.accessKey,
    HWC_SK: DEFAULT_ACCESS_KEY.secretKey,
  };
}

/** Writes a run manifest (a document, or text as is) to a fresh temporary file; returns its path. */
export async function writeManifest(doc: unknown): Promise<string> {
  const path = join(tmpdir(), `manifest-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}
