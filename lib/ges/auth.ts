import { ArchiverError, ErrorCodes } from '../errors.js';
import type { GesAuth } from '../config.js';
import type { Logger } from '../log.js';
import { exchange, type HttpAnswer, type HttpDeps } from './http.js';
import type { ResponseHeaders } from '../should-retry.js';
import { gesErrorFromResponse, requestIdOf } from './errors.js';
import { signRequest, type SignableRequest } from './signer.js';
import { iamTokenBodySchema, parseIamTime } from './wire.js';

/**
 * How GES requests are authenticated (docs/contract.md "Configuration", docs/ges-api.md §2): an
 * X-Auth-Token (TokenSource, below) or an AK/SK signature (AkSkSigner, at the end).
 *
 * Where the X-Auth-Token comes from: a static GES_AUTH_TOKEN, or an IAM password token
 * (docs/ges-api.md §2.1) that is cached, renewed ahead of its expiry, fetched once for all
 * concurrent callers, and dropped when GES rejects it. When IAM refuses the credentials, the
 * refusal is remembered (AUTH_REFUSAL_HOLD_MS): IAM locks a user after repeated failed logins,
 * so one wrong password must cost one attempt per run, not one per graph or file.
 */
export interface TokenSource {
  /** True when a rejected token can be replaced by a fresh one (IAM mode). */
  readonly renewable: boolean;
  token(signal: AbortSignal | undefined): Promise<string>;
  /** Forget `token` if it is still the cached one (a later renewal is kept). */
  invalidate(token: string): void;
  /** The project id the token is scoped to, when the token says (IAM mode). */
  projectId(signal: AbortSignal | undefined): Promise<string | undefined>;
}

/** Renew this long before the token expires (the brief's "within 5 minutes of expires_at"). */
export const TOKEN_RENEW_MARGIN_MS = 5 * 60_000;
/** Assumed lifetime when IAM's `expires_at` is missing or unreadable. */
export const TOKEN_FALLBACK_LIFETIME_MS = 60 * 60_000;
const MAX_IAM_BODY_BYTES = 4 * 1024 * 1024;
/**
 * How long IAM's refusal of the credentials is remembered: every caller in that time gets the
 * same GES_AUTH_FAILED at once, without a login attempt. Longer than a Lambda invocation can
 * last (15 min), so a run asks IAM at most once; a warm Lambda container asks again after it,
 * or at once when its credentials secret changes (a new token source).
 */
export const AUTH_REFUSAL_HOLD_MS = 15 * 60_000;

export function staticTokenSource(token: string): TokenSource {
  return {
    renewable: false,
    token: () => Promise.resolve(token),
    invalidate: () => undefined,
    projectId: () => Promise.resolve(undefined),
  };
}

interface CachedToken {
  token: string;
  /** Local clock (epoch ms) at which to stop using it. */
  renewAt: number;
  projectId: string | undefined;
}

export interface IamTokenSourceDeps extends HttpDeps {
  auth: Extract<GesAuth, { mode: 'iam' }>;
  timeoutMs: number;
  now: () => number;
  /** Default AUTH_REFUSAL_HOLD_MS. */
  refusalHoldMs?: number;
}

/** Waits for `promise`, or rejects as soon as the caller's own signal fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, what = 'Getting an IAM token was cancelled'): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortedError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function abortedError(signal: AbortSignal, what: string): ArchiverError {
  return new ArchiverError(ErrorCodes.Aborted, what, { cause: signal.reason });
}

/**
 * When to renew. The lifetime comes from IAM's own `issued_at`/`expires_at` pair when both are
 * there, so a skewed local clock does not make every token look expired; without `issued_at`
 * it is `expires_at` against our clock.
 */
function renewAtFor(now: number, issuedAt: number | undefined, expiresAt: number | undefined): number {
  let lifetime = expiresAt === undefined ? undefined : issuedAt === undefined ? expiresAt - now : expiresAt - issuedAt;
  if (lifetime === undefined || lifetime <= 0) lifetime = TOKEN_FALLBACK_LIFETIME_MS;
  // A very short-lived token is renewed half-way rather than immediately (no renewal storm).
  return now + lifetime - Math.min(TOKEN_RENEW_MARGIN_MS, lifetime / 2);
}

export function iamTokenSource(deps: IamTokenSourceDeps): TokenSource {
  const { auth } = deps;
  let cached: CachedToken | undefined;
  let inFlight: Promise<CachedToken> | undefined;
  /** IAM refused these credentials: the error every caller gets until `until`. */
  let refused: { error: ArchiverError; until: number } | undefined;
  const holdMs = deps.refusalHoldMs ?? AUTH_REFUSAL_HOLD_MS;
  const who = `user ${auth.username} in domain ${auth.domain} (project ${auth.project})`;
  const op = `the token request for ${who}`;

  async function fetchToken(): Promise<CachedToken> {
    const url = new URL(`${auth.iamEndpoint}/v3/auth/tokens`);
    url.searchParams.set('nocatalog', 'true');
    const body = JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: auth.username, password: auth.password, domain: { name: auth.domain } } },
        },
        // GES needs a project-scoped token (docs/ges-api.md §2.1).
        scope: { project: { name: auth.project } },
      },
    });
    // The shared fetch does not follow any one caller's signal: a caller giving up must not
    // fail the others waiting on it. Its own timeout still bounds it.
    const answer = await exchange(deps, {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json;charset=utf8', accept: 'application/json' },
      body,
      op,
      service: 'IAM',
      signal: undefined,
      timeoutMs: deps.timeoutMs,
      maxBodyBytes: MAX_IAM_BODY_BYTES,
    });
    const now = deps.now();
    if (answer.status !== 201 && answer.status !== 200) {
      const err = gesErrorFromResponse(answer.status, answer.headers, scrub(answer.bodyText, auth.password), op, now);
      if (err.retryable) throw relabel(err, 'GES', 'IAM');
      // 4xx from IAM: wrong user, password, domain or project name. Never the password itself.
      throw new ArchiverError(
        ErrorCodes.GesAuthFailed,
        `IAM refused ${op}: ${describeRemote(err, answer.status)} Check HWC_USERNAME, HWC_PASSWORD, HWC_DOMAIN and HWC_PROJECT. `
        + `IAM is not asked again with these credentials for ${Math.round(holdMs / 60_000)} minutes (repeated failed logins lock the IAM user).`,
        { details: { ...err.details, service: 'IAM' } },
      );
    }
    const raw = answer.headers['x-subject-token'];
    const token = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (token === undefined || token === '') {
      throw new ArchiverError(ErrorCodes.GesBadResponse, `IAM answered ${op} without an X-Subject-Token header`, {
        details: { op, status: answer.status, requestId: requestIdOf(answer.headers) },
      });
    }
    // The body only refines expiry and project; a token without a readable body is still usable.
    let json: unknown = {};
    try {
      json = JSON.parse(answer.bodyText);
    } catch {
      deps.logger.warn({ service: 'IAM', status: answer.status }, 'iam token body is not JSON; assuming a one-hour token');
    }
    const parsed = iamTokenBodySchema.safeParse(json);
    const t = parsed.success ? parsed.data.token : undefined;
    const expiresAt = parseIamTime(t?.expires_at ?? t?.expiresAt);
    const issuedAt = parseIamTime(t?.issued_at ?? t?.issuedAt);
    return { token, renewAt: renewAtFor(now, issuedAt, expiresAt), projectId: t?.project?.id };
  }

  function current(): Promise<CachedToken> {
    if (cached !== undefined && deps.now() < cached.renewAt) return Promise.resolve(cached);
    if (refused !== undefined) {
      if (deps.now() < refused.until) return Promise.reject(refused.error);
      refused = undefined;
    }
    // Single flight: every caller that finds the cache stale shares one IAM request.
    inFlight ??= fetchToken().then(
      (fresh) => {
        cached = fresh;
        inFlight = undefined;
        return fresh;
      },
      (err: unknown) => {
        inFlight = undefined;
        // Only a refusal of the credentials is remembered; IAM being unavailable is not.
        if (err instanceof ArchiverError && err.code === ErrorCodes.GesAuthFailed) {
          refused = { error: err, until: deps.now() + holdMs };
          deps.logger.warn({ holdMs }, 'iam refused the credentials; not asking again until the hold ends');
        }
        throw err;
      },
    );
    return inFlight;
  }

  return {
    renewable: true,
    token: async (signal) => (await untilAborted(current(), signal)).token,
    invalidate: (token) => {
      if (cached?.token === token) cached = undefined;
    },
    projectId: async (signal) => (await untilAborted(current(), signal)).projectId,
  };
}

/** The API gateway refuses an X-Sdk-Date further than this from its clock (docs/ges-api.md §2.3). */
export const SIGNATURE_MAX_SKEW_MS = 15 * 60_000;

/**
 * Signs GES requests with an AK/SK. The gateway locks an AK for 5 minutes after 5 refused
 * signatures in a row (docs/ges-api.md §2.3), so a refusal (401) is never sent again: it is
 * remembered for AUTH_REFUSAL_HOLD_MS, during which every request fails at once with the same
 * GES_AUTH_FAILED. Until the gateway has accepted one signed request, signed requests go one
 * at a time, so a wrong SK costs one refused request per run, not one per concurrent caller.
 */
export interface AkSkSigner {
  /** Signs `request` now and hands the signed headers to `send` (one HTTP exchange). */
  exchange(
    request: SignableRequest,
    send: (headers: Record<string, string>) => Promise<HttpAnswer>,
    op: string,
    signal: AbortSignal | undefined,
  ): Promise<HttpAnswer>;
}

export interface AkSkSignerDeps {
  auth: Extract<GesAuth, { mode: 'aksk' }>;
  now: () => number;
  logger: Logger;
  /** Default AUTH_REFUSAL_HOLD_MS. */
  refusalHoldMs?: number;
}

export function akskSigner(deps: AkSkSignerDeps): AkSkSigner {
  const { auth, now, logger } = deps;
  const holdMs = deps.refusalHoldMs ?? AUTH_REFUSAL_HOLD_MS;
  let refused: { error: ArchiverError; until: number } | undefined;
  let accepted = false;
  /** Settles when the signed request before this one has its answer (until one is accepted). */
  let turn: Promise<void> = Promise.resolve();

  function checkRefused(): void {
    if (refused === undefined) return;
    if (now() < refused.until) throw refused.error;
    refused = undefined;
  }

  async function signedOnce(request: SignableRequest, send: (headers: Record<string, string>) => Promise<HttpAnswer>, op: string): Promise<HttpAnswer> {
    checkRefused();
    const answer = await send(signRequest(request, auth, now()));
    if (answer.status === 401) {
      const error = akskRefusal(answer, op, now(), auth, holdMs);
      refused = { error, until: now() + holdMs };
      logger.warn({ holdMs, remoteCode: error.details?.['remoteCode'] }, 'ges refused the ak/sk signature; not signing with it again until the hold ends');
      throw error;
    }
    if (answer.status >= 200 && answer.status < 300) accepted = true;
    return answer;
  }

  return {
    async exchange(request, send, op, signal) {
      checkRefused();
      if (accepted) return signedOnce(request, send, op);
      const before = turn;
      let done!: () => void;
      turn = new Promise((resolve) => {
        done = resolve;
      });
      try {
        await untilAborted(before, signal, 'Waiting to send a signed GES request was cancelled');
        return await signedOnce(request, send, op);
      } finally {
        // A caller that gave up while waiting still keeps its place until the one before it is done.
        void before.then(done);
      }
    },
  };
}

/** Our clock minus the gateway's (its Date header), when it sent one. */
function clockSkewMs(headers: ResponseHeaders, now: number): number | undefined {
  const raw = headers['date'];
  const date = Date.parse((Array.isArray(raw) ? raw[0] : raw) ?? '');
  return Number.isNaN(date) ? undefined : now - date;
}

function akskRefusal(answer: HttpAnswer, op: string, now: number, auth: AkSkSignerDeps['auth'], holdMs: number): ArchiverError {
  const err = gesErrorFromResponse(answer.status, answer.headers, answer.bodyText, op, now);
  const skew = clockSkewMs(answer.headers, now);
  const minutes = skew === undefined ? 0 : Math.round(Math.abs(skew) / 60_000);
  const clock = skew !== undefined && Math.abs(skew) > SIGNATURE_MAX_SKEW_MS
    ? ` This machine's clock is ${minutes} minutes ${skew > 0 ? 'ahead of' : 'behind'} the gateway's, which refuses an X-Sdk-Date more than ${SIGNATURE_MAX_SKEW_MS / 60_000} minutes off: set the clock right (NTP).`
    : ` The gateway also refuses a request whose X-Sdk-Date is more than ${SIGNATURE_MAX_SKEW_MS / 60_000} minutes off its clock.`;
  const vars = auth.securityToken === undefined ? 'HWC_AK and HWC_SK' : 'HWC_AK, HWC_SK and HWC_SECURITY_TOKEN (a temporary AK/SK expires)';
  return new ArchiverError(
    ErrorCodes.GesAuthFailed,
    `GES refused the AK/SK signature for ${op}: ${describeRemote(err, answer.status)} Check ${vars} (or their HUAWEICLOUD_SDK_* names).${clock} `
    + `Nothing more is signed with this AK/SK for ${Math.round(holdMs / 60_000)} minutes (the gateway locks an AK after 5 refused signatures in a row).`,
    { details: { ...err.details, authMode: 'aksk', ...(skew === undefined ? {} : { clockSkewMs: skew }) } },
  );
}

function describeRemote(err: ArchiverError, status: number): string {
  const code = err.details?.['remoteCode'];
  const message = err.details?.['remoteMessage'];
  const parts = [typeof code === 'string' ? code : `HTTP ${status}`, typeof message === 'string' ? message : ''];
  const text = parts.join(' ').trim();
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** Removes a secret from text that may echo it (a defensive measure: IAM is not known to). */
function scrub(text: string, secret: string): string {
  return secret.length >= 4 ? text.split(secret).join('[REDACTED]') : text;
}

function relabel(err: ArchiverError, from: string, to: string): ArchiverError {
  return new ArchiverError(err.code, err.message.replace(from, to), {
    retryable: err.retryable,
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    details: { ...err.details, service: to },
  });
}
