// Public types of the GES + IAM + OBS emulator. See docs/ges-api.md §10 for the surface
// it imitates; every deliberate divergence from the real services is listed in README.md here.

/** A backup file: either generated deterministically (`bytes`, optional `seed`) or a real file on disk (`path`). */
export type EmulatorFileSpec =
  | { name: string; bytes: number; seed?: string }
  | { name: string; path: string };

export type BackupStatus = 'success' | 'backing_up' | 'failed';

export interface EmulatorBackupSpec {
  id: string;
  name?: string;
  status?: BackupStatus;
  /** Epoch milliseconds; defaults to a deterministic time derived from the backup's position. */
  startTimestamp?: number;
  /** `backup_method` in the lists; default "manual". Imported backups are "import" (docs/ges-api.md §4.7). */
  backupMethod?: 'manual' | 'auto' | 'import';
  files: EmulatorFileSpec[];
}

export interface EmulatorGraphSpec {
  id: string;
  name?: string;
  backups: EmulatorBackupSpec[];
}

export type LinkStyle = 'obs-v2' | 's3-v2' | 's3-v4';
/** The `link_expired_time` variants of docs/ges-api.md §9.1. */
export type LinkExpiredTimeFormat = 'offset-no-colon' | 'zoneless' | 'z' | 'malformed' | 'absent';

export interface EmulatorUser {
  name: string;
  password: string;
  domain: string;
}

/** An AK/SK the gateway accepts signatures from (docs/ges-api.md §2.3). */
export interface EmulatorAccessKey {
  accessKey: string;
  secretKey: string;
  /** A temporary AK/SK: requests must carry this X-Security-Token, signed. */
  securityToken?: string;
}

export interface EmulatorRequestEvent {
  server: 'ges' | 'obs';
  method: string;
  /** Path only: query strings carry signatures and are never reported. */
  path: string;
  status: number;
  bodyBytes: number;
  ms: number;
}

export interface EmulatorOptions {
  projectId?: string;
  projectName?: string;
  /** Defaults to one user: archiver / archiver-password / example-domain. */
  users?: EmulatorUser[];
  /** Tokens accepted as X-Auth-Token without going through IAM, scoped to `projectId`. */
  staticTokens?: string[];
  /** AK/SKs whose SDK-HMAC-SHA256 signatures GES accepts. Default: DEFAULT_ACCESS_KEY only. */
  accessKeys?: EmulatorAccessKey[];
  /**
   * The gateway's clock (epoch ms) for checking X-Sdk-Date (15 minutes of skew) and the AK lock,
   * and for the Date header of GES answers. Default Date.now.
   */
  gatewayClock?: () => number;
  graphs: EmulatorGraphSpec[];
  linkTtlSeconds?: number;
  linkStyle?: LinkStyle;
  linkExpiredTimeFormat?: LinkExpiredTimeFormat;
  linkHost?: string;
  /** Largest `limit` honoured by the list APIs; larger values are clamped. Default 1000. */
  pageLimitMax?: number;
  apiVersionStyle?: 'v2-snake';
  /** IAM token lifetime; default 24 h (docs/ges-api.md §2.1). */
  tokenTtlSeconds?: number;
  /** backup-files `files[].size` as a numeric string instead of a JSON number (docs/ges-api.md §9.2). */
  fileSizeAsString?: boolean;
  /** backup-files entries without `size` (the field is optional in the API). */
  omitFileSizes?: boolean;
  /** OBS bucket name put in links and in the backup-files `bucket` field. */
  bucket?: string;
  /** Called once per finished request (both servers); used by the CLI's --verbose. */
  onRequest?: (event: EmulatorRequestEvent) => void;
  /** Status requests an import job needs before it ends (pending, running…, then success/failed). Default 2. */
  importPollsUntilDone?: number;
  /**
   * Called when an import starts, with its `import_path` and graph: resolve to a fail reason to make
   * the job fail, or undefined to let it succeed (tests check the restored files here, as GES would).
   */
  verifyImport?: (importPath: string, graphId: string) => Promise<string | undefined>;
}

export interface EmulatorStats {
  linkRequests: number;
  listRequests: number;
  /** Every POST /v3/auth/tokens (an IAM login attempt), whatever its outcome. */
  tokenRequests: number;
  /** Login attempts IAM refused for a wrong user name or password (what locks a real IAM user). */
  failedLogins: number;
  /** GES requests whose AK/SK signature the gateway accepted. */
  signedRequests: number;
  /** GES requests refused for their AK/SK signature (wrong, expired, unknown AK, locked AK). */
  refusedSignatures: number;
  /** GES requests that carried an X-Auth-Token header, whatever its outcome. */
  tokenHeaderRequests: number;
  /** Every request that reached the OBS server, whatever its outcome. */
  downloadRequests: number;
  /** Body bytes actually written by the OBS server, by file name. */
  downloadBytes: Map<string, number>;
  /** Every request on any of the servers, by its Host header. */
  requestsByHost: Map<string, number>;
  /** OBS requests that carried a Range header. */
  rangeRequests: number;
  /** OBS requests that carried X-Auth-Token or Authorization (a client must not send them, §9.14). */
  authHeadersSentToObs: number;
  /** POST …/backups/import requests, whatever their outcome. */
  importRequests: number;
  /** Import jobs started, in order. */
  imports: { graphId: string; importPath: string; jobId: string }[];
  /** GET …/jobs/{id}/status requests. */
  jobStatusRequests: number;
}

export interface GesFaultResponse {
  status: number;
  /** A string is sent verbatim (text/plain unless headers say otherwise); anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

export type GesFaultOp = 'token' | 'list' | 'links' | 'import' | 'job' | 'any';

export interface FaultControls {
  /** The next `times` matching IAM/GES requests get `resp` instead of being served. */
  failGes(op: GesFaultOp, resp: GesFaultResponse, times?: number): void;
  /** Every IAM token issued so far (and the static tokens, if asked) becomes invalid: GES answers 401 APIGW.0307. */
  invalidateTokens(options?: { includeStatic?: boolean }): void;
  /** The next `times` downloads of `name` send full headers, then drop the connection after `afterBytes` body bytes. */
  truncateDownload(name: string, afterBytes: number, times?: number): void;
  /** The next download of `name` is cut after `afterBytes` body bytes and every link issued so far for it expires. */
  expireLinksAfterBytes(name: string, afterBytes: number): void;
  /** Caps every download connection at this rate; null lifts the cap (also for streams in flight). */
  throttleDownloads(bytesPerSecond: number | null): void;
  /** The next `times` backup-files responses carry this literal `link_expired_time` (default: until reset). */
  malformedLinkExpiredTime(value: string, times?: number): void;
  /** The next `times` OBS requests for `name` get this status with the matching OBS XML error. */
  obsStatus(name: string, status: number, times?: number): void;
  /**
   * The next `times` backup-list requests (default: until reset) ignore `offset` and answer
   * from the first backup on, with the true `backup_count`: the GES that makes a naive pager
   * stop after one page.
   */
  ignoreListOffset(times?: number): void;
  /** The next `times` import jobs end `failed` with this `fail_reason`. */
  failImport(reason: string, times?: number): void;
  /** Changes a generated file's content (and so its ETag and Last-Modified). */
  changeFile(graphId: string, backupId: string, name: string, newSeed: string): void;
  /** Clears every pending fault and the throttle, and restores changed files. Revoked tokens stay revoked. */
  reset(): void;
}

export interface Emulator {
  gesEndpoint: string;
  iamEndpoint: string;
  obsEndpoint: string;
  projectId: string;
  projectName: string;
  stats: EmulatorStats;
  faults: FaultControls;
  /** Hex SHA-256 of the file's full content; computed lazily (synchronously) and cached. */
  fileSha256(graphId: string, backupId: string, name: string): string;
  fileBytes(graphId: string, backupId: string, name: string): number;
  /** The file's current ETag, quoted, as OBS sends it. */
  fileEtag(graphId: string, backupId: string, name: string): string;
  addBackup(graphId: string, backup: EmulatorBackupSpec): void;
  resetStats(): void;
  close(): Promise<void>;
}
