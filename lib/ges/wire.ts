import * as z from 'zod';
import { ArchiverError, ErrorCodes } from '../errors.js';
import type { GesBackup, GesBackupFile, GesJob } from './types.js';

/**
 * Wire shapes of the GES and IAM answers the archiver reads, and their validation.
 *
 * Every field is accepted in both spellings (v2 snake_case, v1 camelCase: docs/ges-api.md §9.3),
 * numbers are accepted as JSON numbers or numeric strings (§9.2), and only what the archiver
 * truly needs is required. Unknown fields pass through untouched. A body that does not fit
 * becomes GES_BAD_RESPONSE with a message naming the offending field.
 */

/** A number, a numeric string, or nothing (null, undefined, ''). */
const numberLike = z.unknown().transform((value, ctx): number | undefined => {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  ctx.addIssue({ code: 'custom', message: `must be a number or a numeric string, got ${describeValue(value)}` });
  return z.NEVER;
}).optional(); // .optional(): zod v4 treats an absent key as an error for a bare transform

/** An optional string; null becomes undefined. */
const optionalString = z.string().nullish().transform((v) => v ?? undefined);

/** An optional string that may also arrive as a number (stringified, never interpreted). */
const optionalText = z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined ? undefined : String(v)));

const nonEmptyString = (what: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `${what} is missing` : `${what} must be a string, got ${describeValue(issue.input)}`) })
    .trim()
    .min(1, `${what} is empty`);

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a non-numeric string' : JSON.stringify(value);
  return typeof value;
}

/** One entry of `backup_list` / `backupList` (docs/ges-api.md §4.1). */
export const backupEntrySchema = z
  .object({
    id: nonEmptyString('id'),
    name: optionalString,
    graph_id: optionalString,
    graphId: optionalString,
    status: optionalString,
    start_timestamp: numberLike,
    startTimestamp: numberLike,
    end_timestamp: numberLike,
    endTimestamp: numberLike,
    start_time: optionalString,
    startTime: optionalString,
    end_time: optionalString,
    endTime: optionalString,
    size: numberLike,
    backup_method: optionalString,
    backupMethod: optionalString,
  })
  .loose()
  .superRefine((entry, ctx) => {
    // Without a status nobody can tell whether the backup is complete (CONTRACT: only `success` is copied).
    if (entry.status === undefined || entry.status.trim() === '') {
      ctx.addIssue({ code: 'custom', path: ['status'], message: 'status is missing' });
    }
  });

/** One page of a backup list (docs/ges-api.md §4.2). Both list and count may be absent (`omitempty`). */
export const backupPageSchema = z
  .object({
    backup_count: numberLike,
    backupCount: numberLike,
    backup_list: z.array(backupEntrySchema).nullish(),
    backupList: z.array(backupEntrySchema).nullish(),
  })
  .loose();

/** One entry of backup-files `files` (docs/ges-api.md §4.6). */
export const backupFileEntrySchema = z
  .object({
    name: nonEmptyString('name'),
    size: numberLike,
    download_link: optionalString,
    downloadLink: optionalString,
    link_expired_time: optionalText,
    linkExpiredTime: optionalText,
  })
  .loose()
  .superRefine((entry, ctx) => {
    const link = entry.download_link ?? entry.downloadLink;
    if (link === undefined || link.trim() === '') {
      ctx.addIssue({ code: 'custom', path: ['download_link'], message: 'download_link is missing' });
    }
  });

/** The backup-files answer (docs/ges-api.md §4.6). `bucket` and `files` are both `omitempty`. */
export const backupFilesSchema = z
  .object({
    bucket: optionalString,
    files: z.array(backupFileEntrySchema).nullish(),
  })
  .loose();

/** The answer to `POST …/backups/import` (docs/ges-api.md §4.7): `{"job_id": "…"}` (v1 spelling accepted too). */
export const importAnswerSchema = z
  .object({
    job_id: optionalText,
    jobId: optionalText,
  })
  .loose()
  .superRefine((body, ctx) => {
    if ((body.job_id ?? body.jobId ?? '').trim() === '') ctx.addIssue({ code: 'custom', path: ['job_id'], message: 'job_id is missing' });
  });

/**
 * A job's status (`GET …/jobs/{job_id}/status`, docs/ges-api.md §4.4): `status` is pending,
 * running, waiting, success, failed or partiallyFailed; `fail_reason` says why it failed;
 * `job_progress` is documented as reserved.
 */
export const jobStatusSchema = z
  .object({
    job_id: optionalText,
    jobId: optionalText,
    status: nonEmptyString('status'),
    job_type: optionalString,
    jobType: optionalString,
    fail_reason: optionalText,
    failReason: optionalText,
    job_progress: numberLike,
    jobProgress: numberLike,
  })
  .loose();

/** The body of `POST /v3/auth/tokens` (docs/ges-api.md §2.1); only what the archiver reads. */
export const iamTokenBodySchema = z
  .object({
    token: z
      .object({
        expires_at: optionalString,
        expiresAt: optionalString,
        issued_at: optionalString,
        issuedAt: optionalString,
        project: z.object({ id: optionalString, name: optionalString }).loose().nullish(),
      })
      .loose(),
  })
  .loose();

/** `backup_list[3].status` style path of a zod issue. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function describeZodError(error: z.ZodError): { message: string; fields: string[] } {
  const fields: string[] = [];
  const parts = error.issues.slice(0, 5).map((issue) => {
    const where = formatPath(issue.path);
    fields.push(where);
    return where === '' ? issue.message : `${where}: ${issue.message}`;
  });
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return { message: parts.join('; ') + more, fields };
}

/** Validates a parsed JSON body, or throws GES_BAD_RESPONSE naming the field(s). */
export function validateBody<S extends z.ZodType>(schema: S, json: unknown, op: string): z.output<S> {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const { message, fields } = describeZodError(parsed.error);
  throw new ArchiverError(ErrorCodes.GesBadResponse, `GES answered ${op} with an unexpected body: ${message}`, {
    details: { op, fields },
  });
}

/** Parses a 2xx body as JSON, or throws GES_BAD_RESPONSE. An empty body counts as `{}`. */
export function parseJsonBody(bodyText: string, op: string): unknown {
  if (bodyText.trim() === '') return {};
  try {
    return JSON.parse(bodyText) as unknown;
  } catch (err) {
    throw new ArchiverError(ErrorCodes.GesBadResponse, `GES answered ${op} with a body that is not JSON`, {
      cause: err,
      details: { op, bodyBytes: Buffer.byteLength(bodyText) },
    });
  }
}

/** `yyyy-MM-ddTHH:mm:ss` without a zone is UTC in every GES example (docs/ges-api.md §9.6). */
function parseZonelessUtc(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return undefined;
  const zone = m[4] === undefined ? 'Z' : m[4].length === 5 ? `${m[4].slice(0, 3)}:${m[4].slice(3)}` : m[4];
  const ms = Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface BackupPage {
  backups: GesBackup[];
  /** `backup_count`: the total GES claims, when it says. */
  total: number | undefined;
}

export function normalizeBackupPage(page: z.output<typeof backupPageSchema>, graphId: string): BackupPage {
  const list = page.backup_list ?? page.backupList ?? [];
  return {
    total: page.backup_count ?? page.backupCount,
    backups: list.map((e) => ({
      id: e.id,
      name: e.name ?? '',
      graphId: e.graph_id ?? e.graphId ?? graphId,
      status: (e.status ?? '').trim(),
      startTimestamp: e.start_timestamp ?? e.startTimestamp ?? parseZonelessUtc(e.start_time ?? e.startTime),
      endTimestamp: e.end_timestamp ?? e.endTimestamp ?? parseZonelessUtc(e.end_time ?? e.endTime),
      sizeMb: e.size,
      backupMethod: e.backup_method ?? e.backupMethod,
    })),
  };
}

export function normalizeBackupFiles(body: z.output<typeof backupFilesSchema>): { bucket: string | undefined; files: GesBackupFile[] } {
  return {
    bucket: body.bucket,
    files: (body.files ?? []).map((f) => ({
      name: f.name,
      sizeKb: f.size,
      // The link is opaque (docs/ges-api.md §9.14): kept byte for byte, not even trimmed.
      downloadLink: f.download_link ?? f.downloadLink ?? '',
      linkExpiredTime: f.link_expired_time ?? f.linkExpiredTime,
    })),
  };
}

export function normalizeImportAnswer(body: z.output<typeof importAnswerSchema>): { jobId: string } {
  return { jobId: (body.job_id ?? body.jobId ?? '').trim() };
}

export function normalizeJobStatus(body: z.output<typeof jobStatusSchema>, jobId: string): GesJob {
  const failReason = body.fail_reason ?? body.failReason;
  const progress = body.job_progress ?? body.jobProgress;
  return {
    jobId: body.job_id ?? body.jobId ?? jobId,
    status: body.status,
    ...(failReason === undefined || failReason.trim() === '' ? {} : { failReason }),
    ...(progress === undefined ? {} : { progress }),
  };
}

/** Parses IAM's `expires_at` / `issued_at` (ISO 8601 with microseconds). */
export function parseIamTime(text: string | undefined): number | undefined {
  return parseZonelessUtc(text);
}
