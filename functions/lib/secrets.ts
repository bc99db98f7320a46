import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { describeIssues } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';

/**
 * Huawei credentials for Lambda come from one Secrets Manager secret holding a JSON object
 * with the same names as the CONTRACT environment variables, one of
 *   {"GES_AUTH_TOKEN": "..."}
 *   {"HWC_IAM_ENDPOINT": "...", "HWC_USERNAME": "...", "HWC_PASSWORD": "...", "HWC_DOMAIN": "...", "HWC_PROJECT": "..."}
 *   {"HWC_AK": "...", "HWC_SK": "..."} (plus "HWC_SECURITY_TOKEN" for a temporary AK/SK)
 * (optionally with "GES_PROJECT_ID", which a token and an AK/SK need from here or the environment). The values are merged over the environment before
 * `loadConfig`, so local runs without HWC_SECRET_ID keep using plain environment variables.
 *
 * Errors name the secret and the offending field, never a value; nothing here logs.
 */
export const SECRET_ID_ENV_VAR = 'HWC_SECRET_ID';

const IAM_FIELDS = ['HWC_IAM_ENDPOINT', 'HWC_USERNAME', 'HWC_PASSWORD', 'HWC_DOMAIN', 'HWC_PROJECT'] as const;
const AKSK_FIELDS = ['HWC_AK', 'HWC_SK'] as const;

const field = z.string().trim().min(1, 'must be a non-empty string');

export const HuaweiSecretSchema = z
  .strictObject({
    GES_AUTH_TOKEN: field.optional(),
    GES_PROJECT_ID: field.optional(),
    HWC_IAM_ENDPOINT: field.optional(),
    HWC_USERNAME: field.optional(),
    HWC_PASSWORD: z.string().min(1, 'must be a non-empty string').optional(),
    HWC_DOMAIN: field.optional(),
    HWC_PROJECT: field.optional(),
    HWC_AK: field.optional(),
    HWC_SK: field.optional(),
    HWC_SECURITY_TOKEN: field.optional(),
  })
  .superRefine((s, ctx) => {
    const shapes = [
      { name: 'a token', fields: ['GES_AUTH_TOKEN'] as const },
      { name: 'IAM password', fields: IAM_FIELDS },
      { name: 'AK/SK', fields: [...AKSK_FIELDS, 'HWC_SECURITY_TOKEN'] as const },
    ];
    const present = shapes.map((shape) => ({ ...shape, set: shape.fields.filter((k) => s[k] !== undefined) })).filter((shape) => shape.set.length > 0);
    if (present.length > 1) {
      const first = present[0]?.set[0] ?? 'GES_AUTH_TOKEN';
      ctx.addIssue({
        code: 'custom',
        path: [first],
        message: `${present.map((p) => `${p.set.join(', ')} (${p.name})`).join(' and ')}: credentials of more than one kind; keep one: GES_AUTH_TOKEN, or the HWC_* IAM fields, or HWC_AK and HWC_SK`,
      });
      return;
    }
    const required = present[0]?.name === 'AK/SK' ? AKSK_FIELDS : present[0]?.name === 'a token' ? [] : IAM_FIELDS;
    for (const k of required.filter((f) => s[f] === undefined)) {
      ctx.addIssue({ code: 'custom', path: [k], message: `${k}: is required (or hold GES_AUTH_TOKEN, the HWC_* IAM fields, or HWC_AK and HWC_SK instead)` });
    }
  });

export interface SecretsOptions {
  /** Default: a client for the Lambda's own region, made for the read and destroyed after it. */
  client?: SecretsManagerClient;
  signal?: AbortSignal;
  /** Clock for the cache's TTL. Default Date.now. */
  now?: () => number;
  /** Default SECRET_CACHE_TTL_MS. */
  ttlMs?: number;
}

/**
 * How long a warm container reuses a secret it read: a rotated password is picked up within
 * this time even when nothing failed. After an auth failure it is read again at once
 * (forgetHuaweiSecret).
 */
export const SECRET_CACHE_TTL_MS = 5 * 60_000;

interface CacheEntry {
  value: Promise<Readonly<Record<string, string>>>;
  /** Epoch ms after which the next call reads the secret again. */
  expiresAt: number;
}

// One read per container, secret id and TTL; concurrent callers share the same promise. A
// failed read is forgotten so the next invocation tries again.
const cache = new Map<string, CacheEntry>();

/** Forgets every cached secret (tests). */
export function clearSecretCache(): void {
  cache.clear();
}

/**
 * Forgets the secret named by HWC_SECRET_ID, so the next `loadHuaweiSecret` reads it again:
 * called after GES or IAM refused the credentials (the password may have been rotated).
 */
export function forgetHuaweiSecret(env: Record<string, string | undefined>): void {
  const secretId = env[SECRET_ID_ENV_VAR]?.trim();
  if (secretId !== undefined) cache.delete(secretId);
}

/**
 * Returns the environment overlay from the secret named by HWC_SECRET_ID, or `{}` when it is
 * unset (local runs use the plain variables). Cached for SECRET_CACHE_TTL_MS.
 */
export async function loadHuaweiSecret(
  env: Record<string, string | undefined>,
  options: SecretsOptions = {},
): Promise<Readonly<Record<string, string>>> {
  const secretId = env[SECRET_ID_ENV_VAR]?.trim();
  if (secretId === undefined || secretId === '') return {};
  const now = options.now ?? Date.now;
  let entry = cache.get(secretId);
  if (entry === undefined || now() >= entry.expiresAt) {
    const fresh: CacheEntry = { value: fetchSecret(secretId, options), expiresAt: now() + (options.ttlMs ?? SECRET_CACHE_TTL_MS) };
    cache.set(secretId, fresh);
    fresh.value.catch(() => {
      if (cache.get(secretId) === fresh) cache.delete(secretId);
    });
    entry = fresh;
  }
  return entry.value;
}

const NOT_RETRYABLE = new Set(['ResourceNotFoundException', 'AccessDeniedException', 'DecryptionFailure', 'InvalidRequestException', 'InvalidParameterException']);

async function fetchSecret(secretId: string, options: SecretsOptions): Promise<Readonly<Record<string, string>>> {
  const client = options.client ?? new SecretsManagerClient({});
  let secretString: string | undefined;
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }), { abortSignal: options.signal });
    secretString = out.SecretString;
  } catch (err) {
    const name = err instanceof Error ? err.name : 'Error';
    const permanent = NOT_RETRYABLE.has(name);
    throw new ArchiverError(
      permanent ? ErrorCodes.ConfigInvalid : ErrorCodes.Internal,
      `Could not read the Huawei credentials secret ${secretId} (${name})`,
      { cause: err, retryable: !permanent, details: { secretId } },
    );
  } finally {
    // A client made for this read only (the secret is read every few minutes at most).
    if (options.client === undefined) client.destroy();
  }
  if (secretString === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Secret ${secretId} has no SecretString (binary secrets are not supported)`, { details: { secretId } });
  }
  let json: unknown;
  try {
    json = JSON.parse(secretString);
  } catch {
    // No cause: JSON.parse's message quotes the secret text.
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Secret ${secretId} is not a JSON object`, { details: { secretId } });
  }
  const parsed = HuaweiSecretSchema.safeParse(json);
  if (!parsed.success) {
    // describeIssues names paths and messages only; zod issues for these schemas carry no values.
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `Secret ${secretId} is invalid: ${describeIssues(parsed.error)}`, {
      details: { secretId, fields: parsed.error.issues.map((i) => i.path.map(String).join('.')) },
    });
  }
  const overlay: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.data)) if (v !== undefined) overlay[k] = v;
  return Object.freeze(overlay);
}
