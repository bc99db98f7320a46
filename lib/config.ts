import * as z from 'zod';
import { ArchiverError, ErrorCodes } from './errors.js';
import { formatHostEntry, isLoopbackHost, parseHostEntry } from './hosts.js';
import { BWLIMIT, FILE_CONCURRENCY, parseBwlimit, parseWhole, PART_SIZE_MIB, STREAMS, type Parsed, type WholeSetting } from './settings.js';

/**
 * The archiver's configuration, parsed once from the environment (docs/contract.md,
 * "Configuration"). Nothing else in lib/ reads process.env: the composition roots (CLI,
 * Lambda handlers) call `loadConfig(process.env)` and pass the frozen result down.
 */
export type GesAuth =
  | { mode: 'token'; token: string }
  | { mode: 'iam'; iamEndpoint: string; username: string; password: string; domain: string; project: string }
  /** Every GES request signed with SDK-HMAC-SHA256 (lib/ges/signer.ts); `securityToken` with a temporary AK/SK. */
  | { mode: 'aksk'; accessKey: string; secretKey: string; securityToken: string | undefined };

export interface Config {
  readonly ges: {
    readonly endpoint: string;
    /** Optional when IAM auth supplies it (token.project.id); required with a token or AK/SK. */
    readonly projectId: string | undefined;
    readonly auth: GesAuth;
    /** Per-request timeout for GES and IAM calls. */
    readonly requestTimeoutMs: number;
  };
  readonly archive: {
    readonly bucket: string;
    /** Always ends with '/' unless empty. */
    readonly prefix: string;
  };
  readonly download: {
    /** `host`, `host:port`, `*.suffix` or `*.suffix:port` entries a download link may point to (lib/hosts.ts). */
    readonly allowedHosts: readonly string[];
    /** Total download rate of the run, bytes/s (ARCHIVE_BWLIMIT, --bwlimit); undefined: no limit. */
    readonly maxBytesPerSecond?: number | undefined;
  };
  readonly s3: {
    readonly forcePathStyle: boolean;
  };
  readonly manifestUri: string | undefined;
  readonly alertTopicArn: string | undefined;
  readonly copyQueueUrl: string | undefined;
  readonly concurrency: {
    /** Backups copied at once. */
    readonly backups: number;
    /** Files copied at once (within the whole run). */
    readonly files: number;
    /** Parts of one file uploaded at once; with `streams`, it sets the part buffers a file may hold (CopierDeps.partBufferBudgetBytes). */
    readonly parts: number;
    /** Download connections per file, each fetching segments of parts as byte ranges. */
    readonly streams: number;
  };
  /** Minimum multipart part size in bytes; parts grow with the file (lib/copy/part-size.ts filePartSize). */
  readonly partSizeBytes: number;
  /** A copy that looks longer than this at its first part can be continued after an interruption (ARCHIVE_RESUMABLE_AFTER_S). */
  readonly resumableAfterMs: number;
  /** How often such a copy saves its checkpoint, so that a crash is resumable too (ARCHIVE_CHECKPOINT_EVERY_S). */
  readonly checkpointEveryMs: number;
  readonly fanout: {
    /** Assumed copy throughput (MiB/s) when deciding whether a scheduled run fits its time budget inline. */
    readonly inlineThroughputMiBps: number;
    /** The copy queue's maxReceiveCount: the receive on which a failing message alerts (it goes to the DLQ next). */
    readonly maxReceiveCount: number;
    /** How long a fanned-out backup counts as in progress (runs skip it meanwhile): FANOUT_MARKER_HOURS. */
    readonly markerTtlMs: number;
    /** A scheduled run with a copy queue plans per graph (one message each) from this many graphs on: PLAN_PER_GRAPH_MIN_GRAPHS. */
    readonly planPerGraphMinGraphs: number;
    /**
     * A fanned-out file larger than this is copied in shards of about this many bytes (whole
     * parts), one copy worker each, in parallel (ARCHIVE_SHARD_MB; 0: never). Memory: a shard is a
     * copy, bounded like one (copierMemoryBound); the SHA-256 pass after it streams.
     */
    readonly shardBytes: number;
  };
}

export const DEFAULT_ALLOWED_HOSTS = '*.myhuaweicloud.com,*.myhuaweicloud.eu';
/** FANOUT_MARKER_HOURS' default: a fan-out younger than this is left to its workers. */
export const DEFAULT_FANOUT_MARKER_HOURS = 12;
/**
 * ARCHIVE_SHARD_MB's default: about what one copy worker copies in one 15-minute invocation at a
 * conservative 10 MiB/s (some 13 minutes of copying after the start and the handover margin:
 * 7.6 GiB), rounded to 8 GiB. A shard that takes longer hands over like any copy.
 */
export const DEFAULT_SHARD_MIB = 8192;
/** PLAN_PER_GRAPH_MIN_GRAPHS' default: up to 19 graphs, planning serially takes well under a minute. */
export const DEFAULT_PLAN_PER_GRAPH_MIN_GRAPHS = 20;
/** ARCHIVE_PART_CONCURRENCY's default: parts of one file uploaded at once. */
export const DEFAULT_PART_CONCURRENCY = 4;
/** ARCHIVE_RESUMABLE_AFTER_S' default (why this much: lib/copy/copier.ts, DEFAULT_RESUMABLE_AFTER_MS). */
export const DEFAULT_RESUMABLE_AFTER_S = 120;
/** ARCHIVE_CHECKPOINT_EVERY_S' default: a crash loses at most this much of a long copy. */
export const DEFAULT_CHECKPOINT_EVERY_S = 30;
/** INLINE_THROUGHPUT_MBPS' default, in MiB/s. */
export const DEFAULT_INLINE_THROUGHPUT_MIBPS = 50;
/** MAX_RECEIVE_COUNT's default: the copy queue's maxReceiveCount. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;
const MiB = 1024 * 1024;

/**
 * A GES or IAM endpoint: https, because the IAM password and the tokens travel to it; plain
 * http only to a loopback host (a local emulator or tunnel), as for download links.
 */
const serviceUrl = (name: string) =>
  z.string({ error: `${name} is required` }).trim().min(1, `${name} is required`).superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${name} must be an https URL` });
      return;
    }
    if (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))) return;
    ctx.addIssue({
      code: 'custom',
      message: u.protocol === 'http:'
        ? `${name} must be an https URL: plain http would send the password and tokens in clear text (http is allowed only to a loopback host such as localhost or 127.0.0.1)`
        : `${name} must be an https URL`,
    });
  });

const optionalString = z.string().trim().optional().transform((v) => (v === '' ? undefined : v));

const intInRange = (name: string, min: number, max: number, dflt: number) =>
  z.string().trim().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${min} to ${max}` });
      return z.NEVER;
    }
    return n;
  });

/** A setting of lib/settings.ts, parsed from its variable with that setting's own parser. */
const setting = <T>(name: string, parse: (value: string, name: string) => Parsed<T>, dflt: T) =>
  z.string().optional().transform((v, ctx): T => {
    if (v === undefined || v.trim() === '') return dflt;
    const r = parse(v, name);
    if (r.ok) return r.value;
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  });

const wholeSetting = (s: WholeSetting) => setting(s.variable, (v, name) => parseWhole(v, s, name), s.default);

const booleanFlag = (name: string) =>
  z.string().trim().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return false;
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    ctx.addIssue({ code: 'custom', message: `${name} must be true or false` });
    return z.NEVER;
  });

/** Log levels the CLI's LOG_LEVEL accepts (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** LOG_FORMAT: readable lines (the default) or one JSON object per line. */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const oneOf = <T extends string>(name: string, allowed: readonly T[]) =>
  z.string().optional().transform((v, ctx): T | undefined => {
    const value = v?.trim().toLowerCase();
    if (value === undefined || value === '') return undefined;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    ctx.addIssue({ code: 'custom', message: `${name} must be one of ${allowed.join(', ')}` });
    return z.NEVER;
  });

const envSchema = z.object({
  GES_ENDPOINT: serviceUrl('GES_ENDPOINT'),
  GES_PROJECT_ID: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9]{1,64}$/.test(v), 'GES_PROJECT_ID must be 1-64 letters and digits'),
  GES_AUTH_TOKEN: optionalString,
  HWC_IAM_ENDPOINT: optionalString,
  HWC_USERNAME: optionalString,
  HWC_PASSWORD: z.string().optional().transform((v) => (v === '' ? undefined : v)),
  HWC_DOMAIN: optionalString,
  HWC_PROJECT: optionalString,
  HWC_AK: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9]{1,128}$/.test(v), 'HWC_AK (or HUAWEICLOUD_SDK_AK) must be an access key id: letters and digits only'),
  // An SK has no spaces: trimming forgives a trailing newline from a file without changing a real key.
  HWC_SK: optionalString,
  HWC_SECURITY_TOKEN: optionalString,
  ARCHIVE_BUCKET: z.string({ error: 'ARCHIVE_BUCKET is required' }).trim()
    .min(1, 'ARCHIVE_BUCKET is required')
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'ARCHIVE_BUCKET must be a valid S3 bucket name'),
  ARCHIVE_PREFIX: z.string().optional().transform((v, ctx) => {
    const p = v === undefined ? 'ges-backups/' : v.trim();
    if (p === '') return '';
    if (p.startsWith('/') || p.split('/').some((seg) => seg === '..' || seg === '.')) {
      ctx.addIssue({ code: 'custom', message: 'ARCHIVE_PREFIX must be a relative key prefix without "." or ".." segments' });
      return z.NEVER;
    }
    return p.endsWith('/') ? p : `${p}/`;
  }),
  DOWNLOAD_ALLOWED_HOSTS: z.string().optional().transform((v, ctx) => {
    const raw = v === undefined || v.trim() === '' ? DEFAULT_ALLOWED_HOSTS : v;
    const entries = raw.split(',').map((h) => h.trim()).filter((h) => h !== '');
    const bad = entries.filter((h) => parseHostEntry(h) === undefined);
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `DOWNLOAD_ALLOWED_HOSTS has invalid entries: ${bad.join(', ')} (each must be host, host:port, *.suffix or *.suffix:port)`,
      });
      return z.NEVER;
    }
    return entries.map((h) => formatHostEntry(parseHostEntry(h)!));
  }),
  S3_FORCE_PATH_STYLE: booleanFlag('S3_FORCE_PATH_STYLE'),
  MANIFEST_URI: optionalString,
  ALERT_TOPIC_ARN: optionalString,
  COPY_QUEUE_URL: optionalString,
  GES_REQUEST_TIMEOUT_MS: intInRange('GES_REQUEST_TIMEOUT_MS', 1000, 600_000, 30_000),
  ARCHIVE_BACKUP_CONCURRENCY: intInRange('ARCHIVE_BACKUP_CONCURRENCY', 1, 32, 2),
  ARCHIVE_FILE_CONCURRENCY: wholeSetting(FILE_CONCURRENCY),
  ARCHIVE_PART_CONCURRENCY: intInRange('ARCHIVE_PART_CONCURRENCY', 1, 32, DEFAULT_PART_CONCURRENCY),
  ARCHIVE_STREAMS: wholeSetting(STREAMS),
  ARCHIVE_PART_SIZE_MB: wholeSetting(PART_SIZE_MIB),
  ARCHIVE_BWLIMIT: setting(BWLIMIT.variable, parseBwlimit, 0),
  ARCHIVE_RESUMABLE_AFTER_S: intInRange('ARCHIVE_RESUMABLE_AFTER_S', 0, 86_400, DEFAULT_RESUMABLE_AFTER_S),
  ARCHIVE_CHECKPOINT_EVERY_S: intInRange('ARCHIVE_CHECKPOINT_EVERY_S', 1, 3600, DEFAULT_CHECKPOINT_EVERY_S),
  INLINE_THROUGHPUT_MBPS: intInRange('INLINE_THROUGHPUT_MBPS', 1, 100_000, DEFAULT_INLINE_THROUGHPUT_MIBPS),
  MAX_RECEIVE_COUNT: intInRange('MAX_RECEIVE_COUNT', 1, 1000, DEFAULT_MAX_RECEIVE_COUNT),
  LOG_LEVEL: oneOf('LOG_LEVEL', LOG_LEVELS),
  LOG_FORMAT: oneOf('LOG_FORMAT', LOG_FORMATS),
  FANOUT_MARKER_HOURS: intInRange('FANOUT_MARKER_HOURS', 1, 168, DEFAULT_FANOUT_MARKER_HOURS),
  PLAN_PER_GRAPH_MIN_GRAPHS: intInRange('PLAN_PER_GRAPH_MIN_GRAPHS', 1, 100_000, DEFAULT_PLAN_PER_GRAPH_MIN_GRAPHS),
  ARCHIVE_SHARD_MB: intInRange('ARCHIVE_SHARD_MB', 0, 5 * 1024 * 1024, DEFAULT_SHARD_MIB),
});

/** Formats zod issues as "FIELD: message" lines. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      const where = prefix + path;
      return issue.message.startsWith(path) || where === '' ? issue.message : `${where}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Other names accepted for a variable: the Huawei Cloud SDKs' own (HUAWEICLOUD_SDK_*, read by
 * their environment credential provider), so an environment set up for them works as is.
 * The one home of these aliases; both names set to different values is refused.
 */
export const ENV_ALIASES: Readonly<Record<string, readonly string[]>> = {
  HWC_AK: ['HUAWEICLOUD_SDK_AK'],
  HWC_SK: ['HUAWEICLOUD_SDK_SK'],
  HWC_SECURITY_TOKEN: ['HUAWEICLOUD_SDK_SECURITY_TOKEN'],
  GES_PROJECT_ID: ['HUAWEICLOUD_SDK_PROJECT_ID'],
};

const isSet = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/**
 * The environment with each alias's value under its main name, and, for messages, the name
 * the user actually set for each variable.
 */
function applyAliases(env: Record<string, string | undefined>): { env: Record<string, string | undefined>; setAs: Map<string, string> } {
  const out = { ...env };
  const setAs = new Map<string, string>();
  for (const [name, aliases] of Object.entries(ENV_ALIASES)) {
    const given = [name, ...aliases].filter((n) => isSet(env[n]));
    const first = given[0];
    if (first === undefined) continue;
    if (new Set(given.map((n) => env[n]?.trim())).size > 1) {
      throw new ArchiverError(ErrorCodes.ConfigInvalid, `${given.join(' and ')} are set to different values: they name the same setting, so set only one of them`);
    }
    out[name] = env[first];
    setAs.set(name, first);
  }
  return { env: out, setAs };
}

/** "HWC_AK (or HUAWEICLOUD_SDK_AK)": how a message names a variable that has aliases. */
function withAliases(name: string): string {
  const aliases = ENV_ALIASES[name] ?? [];
  return aliases.length === 0 ? name : `${name} (or ${aliases.join(', ')})`;
}

const IAM_VARS = ['HWC_IAM_ENDPOINT', 'HWC_USERNAME', 'HWC_PASSWORD', 'HWC_DOMAIN', 'HWC_PROJECT'] as const;
const AKSK_VARS = ['HWC_AK', 'HWC_SK', 'HWC_SECURITY_TOKEN'] as const;
const ONE_MODE = 'GES_AUTH_TOKEN; or HWC_IAM_ENDPOINT, HWC_USERNAME, HWC_PASSWORD, HWC_DOMAIN and HWC_PROJECT (IAM password); or HWC_AK and HWC_SK (AK/SK)';

function resolveAuth(env: z.infer<typeof envSchema>, setAs: ReadonlyMap<string, string>): GesAuth {
  const named = (k: string): string => setAs.get(k) ?? k;
  const modes = [
    { mode: 'a token', set: env.GES_AUTH_TOKEN === undefined ? [] : ['GES_AUTH_TOKEN'] },
    { mode: 'an IAM password', set: IAM_VARS.filter((k) => env[k] !== undefined) },
    { mode: 'an AK/SK', set: AKSK_VARS.filter((k) => env[k] !== undefined).map(named) },
  ].filter((m) => m.set.length > 0);
  if (modes.length > 1) {
    throw new ArchiverError(
      ErrorCodes.ConfigInvalid,
      // "X for Y", not "X: Y": the logger's redaction would take "HWC_SK: …" for a secret.
      `GES credentials of more than one auth mode are set (${modes.map((m) => `${m.set.join(', ')} for ${m.mode}`).join('; ')}). Keep the variables of one mode only: ${ONE_MODE}`,
    );
  }
  const only = modes[0];
  if (only === undefined) throw new ArchiverError(ErrorCodes.ConfigInvalid, `No GES credentials: set ${ONE_MODE}`);
  if (only.mode === 'a token') return { mode: 'token', token: env.GES_AUTH_TOKEN! };
  if (only.mode === 'an AK/SK') {
    const missing = (['HWC_AK', 'HWC_SK'] as const).filter((k) => env[k] === undefined).map(withAliases);
    if (missing.length > 0) {
      const why = env.HWC_AK === undefined && env.HWC_SK === undefined ? ` (${named('HWC_SECURITY_TOKEN')} goes with a temporary AK/SK)` : '';
      throw new ArchiverError(ErrorCodes.ConfigInvalid, `AK/SK auth is incomplete: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} required${why}`);
    }
    return { mode: 'aksk', accessKey: env.HWC_AK!, secretKey: env.HWC_SK!, securityToken: env.HWC_SECURITY_TOKEN };
  }
  const missing = IAM_VARS.filter((k) => env[k] === undefined);
  if (missing.length > 0) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `IAM auth is incomplete: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required`);
  }
  const iamEndpoint = serviceUrl('HWC_IAM_ENDPOINT').safeParse(env.HWC_IAM_ENDPOINT);
  if (!iamEndpoint.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, describeIssues(iamEndpoint.error));
  return {
    mode: 'iam',
    iamEndpoint: iamEndpoint.data.replace(/\/+$/, ''),
    username: env.HWC_USERNAME!,
    password: env.HWC_PASSWORD!,
    domain: env.HWC_DOMAIN!,
    project: env.HWC_PROJECT!,
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Command-line flags over their variables (--transfers, --streams, --part-size, --bwlimit),
 * already parsed and checked with the same lib/settings.ts rules. `maxBytesPerSecond` 0: no limit.
 */
export interface ConfigOverrides {
  files?: number | undefined;
  streams?: number | undefined;
  partSizeBytes?: number | undefined;
  maxBytesPerSecond?: number | undefined;
}

/**
 * Parses and validates the environment, then applies `overrides`. Throws ArchiverError
 * CONFIG_INVALID naming every offending variable (never the value of a secret one).
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: ConfigOverrides = {}): Config {
  const aliased = applyAliases(env);
  const parsed = envSchema.safeParse(aliased.env);
  if (!parsed.success) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  }
  const e = parsed.data;
  const auth = resolveAuth(e, aliased.setAs);
  if (auth.mode === 'token' && e.GES_PROJECT_ID === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'GES_PROJECT_ID is required with GES_AUTH_TOKEN (IAM auth can supply it)');
  }
  if (auth.mode === 'aksk' && e.GES_PROJECT_ID === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `${withAliases('GES_PROJECT_ID')} is required with AK/SK auth (IAM password auth can supply it)`);
  }
  return deepFreeze<Config>({
    ges: {
      endpoint: e.GES_ENDPOINT.replace(/\/+$/, ''),
      projectId: e.GES_PROJECT_ID,
      auth,
      requestTimeoutMs: e.GES_REQUEST_TIMEOUT_MS,
    },
    archive: { bucket: e.ARCHIVE_BUCKET, prefix: e.ARCHIVE_PREFIX },
    download: { allowedHosts: e.DOWNLOAD_ALLOWED_HOSTS, maxBytesPerSecond: (overrides.maxBytesPerSecond ?? e.ARCHIVE_BWLIMIT) || undefined },
    s3: { forcePathStyle: e.S3_FORCE_PATH_STYLE },
    manifestUri: e.MANIFEST_URI,
    alertTopicArn: e.ALERT_TOPIC_ARN,
    copyQueueUrl: e.COPY_QUEUE_URL,
    concurrency: {
      backups: e.ARCHIVE_BACKUP_CONCURRENCY,
      files: overrides.files ?? e.ARCHIVE_FILE_CONCURRENCY,
      parts: e.ARCHIVE_PART_CONCURRENCY,
      streams: overrides.streams ?? e.ARCHIVE_STREAMS,
    },
    partSizeBytes: overrides.partSizeBytes ?? e.ARCHIVE_PART_SIZE_MB * MiB,
    resumableAfterMs: e.ARCHIVE_RESUMABLE_AFTER_S * 1000,
    checkpointEveryMs: e.ARCHIVE_CHECKPOINT_EVERY_S * 1000,
    fanout: { inlineThroughputMiBps: e.INLINE_THROUGHPUT_MBPS, maxReceiveCount: e.MAX_RECEIVE_COUNT, markerTtlMs: e.FANOUT_MARKER_HOURS * 3_600_000, planPerGraphMinGraphs: e.PLAN_PER_GRAPH_MIN_GRAPHS, shardBytes: e.ARCHIVE_SHARD_MB * MiB },
  });
}

/** The storage part of the configuration: all that `verify` and `list` need. */
export type StorageConfig = Pick<Config, 'archive' | 's3'>;

const storageEnvSchema = envSchema.pick({ ARCHIVE_BUCKET: true, ARCHIVE_PREFIX: true, S3_FORCE_PATH_STYLE: true, LOG_LEVEL: true, LOG_FORMAT: true });

/**
 * Validates only ARCHIVE_BUCKET, ARCHIVE_PREFIX, S3_FORCE_PATH_STYLE and the LOG_* settings
 * (plus the AWS SDK's own variables, which the SDK reads), so an auditor without Huawei
 * credentials can run `verify` and `list`. Same rules and messages as `loadConfig`.
 */
export function loadStorageConfig(env: Record<string, string | undefined>): StorageConfig {
  const parsed = storageEnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  }
  const e = parsed.data;
  return deepFreeze<StorageConfig>({
    archive: { bucket: e.ARCHIVE_BUCKET, prefix: e.ARCHIVE_PREFIX },
    s3: { forcePathStyle: e.S3_FORCE_PATH_STYLE },
  });
}

export interface LogSettings {
  /** LOG_LEVEL, when set; the command's own default otherwise. */
  readonly level: LogLevel | undefined;
  readonly format: LogFormat;
}

const logEnvSchema = envSchema.pick({ LOG_LEVEL: true, LOG_FORMAT: true });

/** LOG_LEVEL and LOG_FORMAT, validated like every other setting (CONFIG_INVALID naming them). */
export function loadLogSettings(env: Record<string, string | undefined>): LogSettings {
  const parsed = logEnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  }
  return { level: parsed.data.LOG_LEVEL, format: parsed.data.LOG_FORMAT ?? 'pretty' };
}

/**
 * Where `restore --to s3://…` writes (docs/contract.md, "Restore"): another S3 API, e.g. Huawei OBS,
 * when RESTORE_S3_ENDPOINT is set; undefined means the archive's own S3 settings.
 */
export interface RestoreTargetS3Config {
  readonly endpoint: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  /** Absent: the AWS SDK's default credential chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

const restoreEnvSchema = z.object({
  RESTORE_S3_ENDPOINT: optionalString,
  RESTORE_S3_REGION: optionalString,
  RESTORE_S3_FORCE_PATH_STYLE: booleanFlag('RESTORE_S3_FORCE_PATH_STYLE'),
  RESTORE_S3_ACCESS_KEY_ID: optionalString,
  RESTORE_S3_SECRET_ACCESS_KEY: z.string().optional().transform((v) => (v === '' ? undefined : v)),
  AWS_REGION: optionalString,
});

/**
 * Validates the RESTORE_S3_* variables. Without RESTORE_S3_ENDPOINT, restore writes with the
 * archive's own client, so any other RESTORE_S3_* variable is refused rather than ignored.
 * Messages name variables, never values.
 */
export function loadRestoreTargetConfig(env: Record<string, string | undefined>): RestoreTargetS3Config | undefined {
  const parsed = restoreEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  const e = parsed.data;
  const others = ([
    ['RESTORE_S3_REGION', e.RESTORE_S3_REGION !== undefined],
    ['RESTORE_S3_FORCE_PATH_STYLE', e.RESTORE_S3_FORCE_PATH_STYLE],
    ['RESTORE_S3_ACCESS_KEY_ID', e.RESTORE_S3_ACCESS_KEY_ID !== undefined],
    ['RESTORE_S3_SECRET_ACCESS_KEY', e.RESTORE_S3_SECRET_ACCESS_KEY !== undefined],
  ] as const).filter(([, set]) => set).map(([name]) => name);
  if (e.RESTORE_S3_ENDPOINT === undefined) {
    if (others.length > 0) {
      throw new ArchiverError(ErrorCodes.ConfigInvalid, `${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} set but RESTORE_S3_ENDPOINT is not: set it too (the restore target's S3 endpoint), or unset them to restore with the archive's own S3 settings`);
    }
    return undefined;
  }
  const endpoint = serviceUrl('RESTORE_S3_ENDPOINT').safeParse(e.RESTORE_S3_ENDPOINT);
  if (!endpoint.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(endpoint.error)}`);
  const region = e.RESTORE_S3_REGION ?? e.AWS_REGION;
  if (region === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'RESTORE_S3_REGION is required with RESTORE_S3_ENDPOINT (or AWS_REGION), e.g. cn-north-4 for Huawei OBS');
  }
  if ((e.RESTORE_S3_ACCESS_KEY_ID === undefined) !== (e.RESTORE_S3_SECRET_ACCESS_KEY === undefined)) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'Set both RESTORE_S3_ACCESS_KEY_ID and RESTORE_S3_SECRET_ACCESS_KEY, or neither (then the AWS SDK\'s default credentials are used)');
  }
  return deepFreeze<RestoreTargetS3Config>({
    endpoint: endpoint.data.replace(/\/+$/, ''),
    region,
    forcePathStyle: e.RESTORE_S3_FORCE_PATH_STYLE,
    ...(e.RESTORE_S3_ACCESS_KEY_ID === undefined || e.RESTORE_S3_SECRET_ACCESS_KEY === undefined
      ? {}
      : { credentials: { accessKeyId: e.RESTORE_S3_ACCESS_KEY_ID, secretAccessKey: e.RESTORE_S3_SECRET_ACCESS_KEY } }),
  });
}
