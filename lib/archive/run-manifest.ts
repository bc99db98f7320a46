import { readFile } from 'node:fs/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { describeIssues } from '../config.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { idProblem } from '../ids.js';
import type { RetryPolicy } from '../retry.js';
import { s3Error } from '../store/s3-objects.js';

/**
 * The run manifest (docs/contract.md, "Manifest"): which backups of which graphs a run archives.
 * Validated strictly before anything is copied; errors name the offending field.
 */
export type BackupSelector = 'latest' | 'all' | readonly string[];

export interface RunManifest {
  readonly version: 1;
  readonly graphs: readonly { readonly graphId: string; readonly backups: BackupSelector }[];
}

/** A graph or backup id (the one rule: lib/ids.ts), as a schema whose messages name the field. */
export const idSchema = (what: string) =>
  z.string({ error: `${what} must be a string` }).superRefine((value, ctx) => {
    const problem = idProblem(what, value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

const manifestSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1 (the only supported manifest version)' }),
  graphs: z.array(
    z.strictObject({
      graphId: idSchema('graphId'),
      backups: z.union([
        z.literal('latest'),
        z.literal('all'),
        z.array(idSchema('backup id')).min(1, 'an explicit backup list must not be empty'),
      ], { error: 'backups must be "latest", "all" or a list of backup ids' }),
    }),
    { error: 'graphs must be a list' },
  ).min(1, 'graphs must list at least one graph'),
}).superRefine((m, ctx) => {
  const seen = new Set<string>();
  m.graphs.forEach((g, i) => {
    if (seen.has(g.graphId)) {
      ctx.addIssue({ code: 'custom', path: ['graphs', i, 'graphId'], message: `graph ${g.graphId} is listed twice` });
    }
    seen.add(g.graphId);
  });
});

function invalid(source: string, message: string, cause?: unknown): ArchiverError {
  return new ArchiverError(ErrorCodes.ManifestInvalid, `Invalid manifest ${source}: ${message}`, { cause });
}

/**
 * Parses manifest text (JSON or YAML) and validates it. The YAML parser is loaded only for a
 * YAML document (it is a fifth of the modules an `archive` would otherwise load at start).
 */
export async function parseRunManifest(text: string, source = '(inline)'): Promise<RunManifest> {
  let data: unknown;
  try {
    data = /^\s*[{[]/.test(text) ? JSON.parse(text) : (await import('./yaml.js')).parseYaml(text);
  } catch (err) {
    throw invalid(source, `not valid JSON or YAML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`, err);
  }
  return validateRunManifest(data, source);
}

/** Validates an already-parsed manifest object (also used for `archive --graph --backup`). */
export function validateRunManifest(data: unknown, source = '(inline)'): RunManifest {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw invalid(source, 'the document must be an object with "version" and "graphs"');
  }
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) {
    throw invalid(source, describeIssues(parsed.error));
  }
  return parsed.data;
}

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Reads the manifest from a local path or `s3://bucket/key`. */
export async function loadRunManifest(
  location: string,
  deps: { s3: S3Client; retry: RetryPolicy },
  options: { signal?: AbortSignal } = {},
): Promise<RunManifest> {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  let text: string;
  if (s3) {
    const [, bucket, key] = s3;
    text = await deps.retry(async () => {
      try {
        const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: options.signal });
        if ((res.ContentLength ?? 0) > MAX_MANIFEST_BYTES) throw invalid(location, 'larger than 1 MiB');
        return (await res.Body?.transformToString('utf8')) ?? '';
      } catch (err) {
        if (err instanceof ArchiverError) throw err;
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        const status = e.$metadata?.httpStatusCode;
        // Missing or forbidden: the location is wrong (exit 2). Anything else may pass.
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
          throw invalid(location, `cannot be read from S3 (${e.name ?? status})`, err);
        }
        throw s3Error('GetObject', location, err);
      }
    }, { signal: options.signal });
  } else if (location.startsWith('s3://')) {
    throw invalid(location, 'an S3 location must look like s3://bucket/key');
  } else {
    try {
      const buf = await readFile(location);
      if (buf.byteLength > MAX_MANIFEST_BYTES) throw invalid(location, 'larger than 1 MiB');
      text = buf.toString('utf8');
    } catch (err) {
      if (err instanceof ArchiverError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw invalid(location, `cannot be read (${code})`, err);
    }
  }
  return parseRunManifest(text, location);
}
