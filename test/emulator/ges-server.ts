// IAM (POST /v3/auth/tokens, GET /v3/projects) and the GES backup APIs, on one server.
// Shapes follow docs/ges-api.md §2.1, §2.2, §4.1–4.3, §4.6 and the errors of §5.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AkSkVerifier } from './aksk.js';
import type { FaultState } from './faults.js';
import { readBody, requestId, sendBody, sendJson, splitUrl, track } from './http-util.js';
import { JobStore } from './jobs.js';
import type { BackupEntry, FileEntry, Model, TokenStore } from './model.js';
import { presign, uriEncode } from './signing.js';
import type { EmulatorOptions, EmulatorStats, EmulatorUser, LinkExpiredTimeFormat } from './types.js';

export interface GesContext {
  model: Model;
  tokens: TokenStore;
  aksk: AkSkVerifier;
  faults: FaultState;
  stats: EmulatorStats;
  options: EmulatorOptions;
  projectId: string;
  projectName: string;
  users: EmulatorUser[];
  bucket: string;
  /** host:port put in download links (known once the OBS server listens). */
  linkAuthority(): string;
  gesEndpoint(): string;
}

const MiB = 1024 * 1024;

export function domainId(domainName: string): string {
  return createHash('md5').update(`domain:${domainName}`).digest('hex');
}

function userId(name: string, domain: string): string {
  return createHash('md5').update(`user:${domain}:${name}`).digest('hex');
}

/** ISO-8601 UTC with microseconds, as IAM writes expires_at (docs/ges-api.md §2.1). */
function iamTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** yyyy-MM-ddTHH:mm:ss, zone-less UTC, as the backup list writes start_time. */
function zonelessUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

export function formatLinkExpiredTime(epochSeconds: number, format: LinkExpiredTimeFormat): string | undefined {
  const ms = epochSeconds * 1000;
  switch (format) {
    case 'offset-no-colon':
      return `${zonelessUtc(ms + 8 * 3_600_000)}+0800`;
    case 'zoneless':
      return zonelessUtc(ms);
    case 'z':
      return `${zonelessUtc(ms)}Z`;
    case 'malformed': {
      // The documented example's three-digit day: 2018-08-016T10:15:14+0800 (§4.6, §9.1).
      const s = zonelessUtc(ms + 8 * 3_600_000);
      return `${s.slice(0, 8)}0${s.slice(8)}+0800`;
    }
    case 'absent':
      return undefined;
  }
}

const gatewayError = (res: ServerResponse, status: number, code: string, msg: string, headers: Record<string, string> = {}): void =>
  sendJson(res, status, { error_msg: msg, error_code: code, request_id: requestId().toLowerCase() }, headers);

const gesError = (res: ServerResponse, code: string, msg: string, camel: boolean, status = 400): void =>
  sendJson(res, status, camel ? { errorCode: code, errorMessage: msg } : { error_code: code, error_msg: msg });

const keystoneError = (res: ServerResponse, status: number, title: string, message: string): void =>
  sendJson(res, status, { error: { code: status, message, title } });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function createGesHandler(ctx: GesContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  let linkSequence = 0;
  const jobs = new JobStore(ctx);

  const wrongProject = (res: ServerResponse): void => sendJson(res, 400, { error_code: 'GES.0016', error_msg: 'Resource not found' });

  /**
   * The gateway's check: an SDK-HMAC-SHA256 Authorization header is verified as a signature
   * (the body is read for it, and returned so that the API can still use it); anything else
   * must carry a valid X-Auth-Token. Undefined when the request was refused (answered).
   */
  const authenticate = async (req: IncomingMessage, res: ServerResponse, projectId: string): Promise<{ body: string | undefined } | undefined> => {
    const token = req.headers['x-auth-token'];
    if (token !== undefined) ctx.stats.tokenHeaderRequests++;
    if (req.headers.authorization?.startsWith('SDK-HMAC-SHA256') === true) {
      const { path, rawQuery } = splitUrl(req.url);
      const body = await readBody(req);
      const verdict = ctx.aksk.verify({ method: req.method ?? 'GET', rawPath: path, rawQuery, headers: req.headers, body });
      if (!verdict.ok) {
        ctx.stats.refusedSignatures++;
        gatewayError(res, 401, verdict.code, verdict.message);
        return undefined;
      }
      ctx.stats.signedRequests++;
      // An AK/SK belongs to the account: any of its projects, here the emulator's one.
      if (projectId !== ctx.projectId) {
        wrongProject(res);
        return undefined;
      }
      return { body };
    }
    if (typeof token !== 'string' || token === '') {
      gatewayError(res, 401, 'APIGW.0301', 'Incorrect IAM authentication information: x-auth-token not found');
      return undefined;
    }
    const check = ctx.tokens.check(token);
    if (!check.ok) {
      if (check.reason === 'unknown') gatewayError(res, 401, 'APIGW.0301', 'Incorrect IAM authentication information: decrypt token fail');
      else if (check.reason === 'expired') gatewayError(res, 401, 'APIGW.0301', `Incorrect IAM authentication information: token expires, expires_at: ${iamTime(check.info?.expiresAt ?? 0)}`);
      else gatewayError(res, 401, 'APIGW.0307', 'The token must be updated.');
      return undefined;
    }
    if (check.info.projectId !== projectId) {
      wrongProject(res);
      return undefined;
    }
    return { body: undefined };
  };

  const issueToken = async (req: IncomingMessage, res: ServerResponse, rawQuery: string): Promise<void> => {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req)) as unknown;
    } catch {
      return keystoneError(res, 400, 'Bad Request', 'The request body is not valid JSON.');
    }
    const auth = isObject(body) && isObject(body.auth) ? body.auth : undefined;
    const identity = auth && isObject(auth.identity) ? auth.identity : undefined;
    const methods = identity?.methods;
    const pw = identity && isObject(identity.password) ? identity.password : undefined;
    const user = pw && isObject(pw.user) ? pw.user : undefined;
    const domain = user && isObject(user.domain) ? user.domain : undefined;
    if (!Array.isArray(methods) || !methods.includes('password') || !user || !domain || str(user.name) === undefined || typeof user.password !== 'string') {
      return keystoneError(res, 400, 'Bad Request', 'Invalid request: auth.identity must use the password method with user.name, user.password and user.domain.');
    }
    const domainName = str(domain.name);
    const found = ctx.users.find((u) => u.name === user.name && (u.domain === domainName || domainId(u.domain) === str(domain.id)));
    if (!found || found.password !== user.password) {
      ctx.stats.failedLogins++;
      return keystoneError(res, 401, 'Unauthorized', 'The username or password is wrong.');
    }
    const project = isObject(auth?.scope) && isObject(auth.scope.project) ? auth.scope.project : undefined;
    const projectName = project && str(project.name);
    const projectIdInScope = project && str(project.id);
    if (projectName === undefined && projectIdInScope === undefined) {
      // GES accepts project-scoped tokens only (docs/ges-api.md §2.1).
      return keystoneError(res, 400, 'Bad Request', 'Invalid request: auth.scope.project (name or id) is required.');
    }
    if ((projectName !== undefined && projectName !== ctx.projectName) || (projectIdInScope !== undefined && projectIdInScope !== ctx.projectId)) {
      return keystoneError(res, 401, 'Unauthorized', 'The project in the scope does not exist.');
    }
    const now = Date.now();
    const ttl = (ctx.options.tokenTtlSeconds ?? 86_400) * 1000;
    const token = ctx.tokens.issue({ projectId: ctx.projectId, projectName: ctx.projectName, userName: found.name, issuedAt: now, expiresAt: now + ttl });
    const dom = { id: domainId(found.domain), name: found.domain };
    const nocatalog = new URLSearchParams(rawQuery).get('nocatalog');
    const tokenBody: Record<string, unknown> = {
      expires_at: iamTime(now + ttl),
      issued_at: iamTime(now),
      methods: ['password'],
      project: { domain: dom, id: ctx.projectId, name: ctx.projectName },
      roles: [{ id: '0', name: 'te_admin' }, { id: '0', name: 'op_gated_ges' }],
      user: { domain: dom, id: userId(found.name, found.domain), name: found.name, password_expires_at: '' },
    };
    if (!nocatalog) {
      tokenBody.catalog = [{
        endpoints: [{ id: domainId(`ges:${ctx.projectName}`), interface: 'public', region: ctx.projectName, region_id: ctx.projectName, url: ctx.gesEndpoint() }],
        id: domainId('ges'), name: 'ges', type: 'ges',
      }];
    }
    sendJson(res, 201, { token: tokenBody }, { 'X-Subject-Token': token });
  };

  const listProjects = (req: IncomingMessage, res: ServerResponse, rawQuery: string): void => {
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || !ctx.tokens.check(token).ok) {
      return keystoneError(res, 401, 'Unauthorized', 'The request you have made requires authentication.');
    }
    const name = new URLSearchParams(rawQuery).get('name');
    const domain = domainId(ctx.users[0]?.domain ?? 'example-domain');
    const base = `${ctx.gesEndpoint()}/v3/projects`;
    const projects = name !== null && name !== ctx.projectName ? [] : [{
      domain_id: domain, is_domain: false, parent_id: domain, name: ctx.projectName, description: '',
      links: { self: `${base}/${ctx.projectId}` }, id: ctx.projectId, enabled: true,
    }];
    sendJson(res, 200, { links: { self: base, previous: null, next: null }, projects });
  };

  const page = (res: ServerResponse, rawQuery: string, camel: boolean): { offset: number; limit: number } | undefined => {
    const q = new URLSearchParams(rawQuery);
    const parse = (name: string, dflt: number, min: number): number | undefined => {
      const v = q.get(name);
      if (v === null || v === '') return dflt;
      return /^\d{1,9}$/.test(v) && Number(v) >= min ? Number(v) : undefined;
    };
    const offset = parse('offset', 0, 0);
    const limit = parse('limit', 10, 1);
    if (offset === undefined || limit === undefined) {
      gesError(res, 'GES.0001', 'Parameter error!', camel);
      return undefined;
    }
    return { offset, limit: Math.min(limit, ctx.options.pageLimitMax ?? 1000) };
  };

  const backupJson = (b: BackupEntry, camel: boolean): Record<string, unknown> => {
    const graph = ctx.model.graphs.get(b.graphId);
    const totalBytes = b.files.reduce((n, f) => n + f.content.bytes, 0);
    const v: [string, string, unknown][] = [
      ['id', 'id', b.id], ['name', 'name', b.name], ['backup_method', 'backupMethod', b.backupMethod],
      ['graph_id', 'graphId', b.graphId], ['graph_name', 'graphName', graph?.name ?? ''],
      ['graph_status', 'graphStatus', '200'], ['graph_size_type_index', 'graphSizeTypeIndex', '1'],
      ['data_store_version', 'dataStoreVersion', '2.2.21'], ['arch', 'arch', 'x86_64'], ['status', 'status', b.status],
      ['start_timestamp', 'startTimestamp', b.startTimestamp], ['start_time', 'startTime', zonelessUtc(b.startTimestamp)],
      ['end_timestamp', 'endTimestamp', b.endTimestamp], ['end_time', 'endTime', zonelessUtc(b.endTimestamp)],
      ['size', 'size', Math.ceil(totalBytes / MiB)], ['duration', 'duration', Math.round((b.endTimestamp - b.startTimestamp) / 1000)],
      ['encrypted', 'encrypted', false],
    ];
    return Object.fromEntries(v.map(([snake, camelKey, value]) => [camel ? camelKey : snake, value]));
  };

  const listBackups = (res: ServerResponse, rawQuery: string, camel: boolean, graphId: string | undefined): void => {
    ctx.stats.listRequests++;
    let all: BackupEntry[];
    if (graphId === undefined) {
      all = ctx.model.allBackups();
    } else {
      const graph = ctx.model.graphs.get(graphId);
      if (!graph) return gesError(res, 'GES.7000', 'The graph does not exist or has been deleted.', camel);
      all = graph.backups;
    }
    const p = page(res, rawQuery, camel);
    if (!p) return;
    const start = ctx.faults.takeIgnoreListOffset() ? 0 : p.offset;
    const list = all.slice(start, start + p.limit).map((b) => backupJson(b, camel));
    sendJson(res, 200, camel
      ? { errorMessage: '', errorCode: '', backupCount: all.length, backupList: list }
      : { backup_count: all.length, backup_list: list });
  };

  const listGraphs = (res: ServerResponse, rawQuery: string, camel: boolean): void => {
    const p = page(res, rawQuery, camel);
    if (!p) return;
    const graphs = [...ctx.model.graphs.values()].slice(p.offset, p.offset + p.limit)
      .map((g) => ({ id: g.id, name: g.name, status: '200', region_code: ctx.projectName, arch: 'x86_64', data_store_version: '2.2.21', graph_size_type_index: '1', product_type: 'InMemory' }));
    sendJson(res, 200, camel ? { graphCount: ctx.model.graphs.size, graphs } : { graph_count: ctx.model.graphs.size, graphs });
  };

  const linkFor = (f: FileEntry, now: number, expiredTimeOverride: string | undefined): Record<string, unknown> => {
    const path = `/${ctx.bucket}/${uriEncode(f.graphId)}/${uriEncode(f.backupId)}/${uriEncode(f.name)}`;
    const link = presign({
      style: ctx.options.linkStyle ?? 'obs-v2', host: ctx.linkAuthority(), path, nowMs: now,
      ttlSeconds: ctx.options.linkTtlSeconds ?? 3600, region: ctx.projectName, sequence: linkSequence++,
      minExpiresAt: f.revokedThrough + 1,
    });
    f.lastIssuedExpires = Math.max(f.lastIssuedExpires, link.expiresAt);
    const kb = Math.ceil(f.content.bytes / 1024);
    const entry: Record<string, unknown> = { name: f.name, size: ctx.options.fileSizeAsString ? String(kb) : kb, download_link: link.url };
    if (ctx.options.omitFileSizes) delete entry.size;
    const expired = expiredTimeOverride ?? formatLinkExpiredTime(link.expiresAt, ctx.options.linkExpiredTimeFormat ?? 'offset-no-colon');
    if (expired !== undefined) entry.link_expired_time = expired;
    return entry;
  };

  const backupFiles = (req: IncomingMessage, res: ServerResponse, rawQuery: string, graphId: string): void => {
    ctx.stats.linkRequests++;
    if (!ctx.model.graphs.has(graphId)) return gesError(res, 'GES.7000', 'The graph does not exist or has been deleted.', false);
    const header = req.headers.backup_id;
    const backupId = new URLSearchParams(rawQuery).get('backup_id') ?? (typeof header === 'string' ? header : null);
    // The documented example for this error uses the camelCase body even on v2 (docs/ges-api.md §1.4).
    if (backupId === null || backupId === '') return gesError(res, 'GES.7049', 'The parameter [backup_id] is not exist.', true);
    const backup = ctx.model.backup(graphId, backupId);
    if (!backup) return gesError(res, 'GES.7024', 'The graph backup does not exist or has been deleted.', false);
    // Undocumented (docs/ges-api.md §9.12); GES.7040 "Failed to back up a graph." is the closest documented code.
    if (backup.status !== 'success') return gesError(res, 'GES.7040', 'Failed to back up a graph.', false);
    const now = Date.now();
    const override = ctx.faults.takeLinkExpiredTime();
    sendJson(res, 200, { bucket: ctx.bucket, files: backup.files.map((f) => linkFor(f, now, override)) });
  };

  const sendFault = (res: ServerResponse, fault: { status: number; body?: unknown; headers?: Record<string, string> }): void => {
    if (fault.body === undefined) {
      res.writeHead(fault.status, { 'Content-Length': '0', ...fault.headers });
      res.end();
    } else if (typeof fault.body === 'string') {
      sendBody(res, fault.status, fault.body, 'text/plain;charset=UTF-8', fault.headers);
    } else {
      sendJson(res, fault.status, fault.body, fault.headers);
    }
  };

  return async (req, res) => {
    track('ges', req, res, ctx.stats, ctx.options.onRequest);
    res.setHeader('X-Request-Id', requestId().toLowerCase());
    // The gateway's own clock, which a client can compare with its X-Sdk-Date.
    res.setHeader('Date', new Date(ctx.options.gatewayClock?.() ?? Date.now()).toUTCString());
    const { path, rawQuery } = splitUrl(req.url);
    const seg = path.split('/').filter((s) => s !== '').map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    const method = req.method ?? 'GET';
    const notFound = (): void => gatewayError(res, 404, 'APIGW.0101', 'The API does not exist or has not been published in the environment.');

    if (seg[0] === 'v3') {
      if (method === 'POST' && seg.length === 3 && seg[1] === 'auth' && seg[2] === 'tokens') {
        ctx.stats.tokenRequests++;
        const fault = ctx.faults.takeGes('token');
        if (fault) return sendFault(res, fault);
        return issueToken(req, res, rawQuery);
      }
      const fault = ctx.faults.takeGes('other');
      if (fault) return sendFault(res, fault);
      if (method === 'GET' && seg.length === 2 && seg[1] === 'projects') return listProjects(req, res, rawQuery);
      return notFound();
    }

    const [version, projectId, graphs, ...rest] = seg;
    const isImport = method === 'POST' && version === 'v2' && rest.length === 3 && rest[1] === 'backups' && rest[2] === 'import';
    if ((version !== 'v2' && version !== 'v1.0') || projectId === undefined || graphs !== 'graphs' || (method !== 'GET' && !isImport)) {
      const fault = ctx.faults.takeGes('other');
      return fault ? sendFault(res, fault) : notFound();
    }
    const camel = version === 'v1.0';
    const isLinks = rest.length === 2 && rest[1] === 'backup-files' && !camel;
    const isList = (rest.length === 1 && rest[0] === 'backups') || (rest.length === 2 && rest[1] === 'backups');
    const isJob = !isImport && version === 'v2' && rest.length === 4 && rest[1] === 'jobs' && rest[3] === 'status';
    const fault = ctx.faults.takeGes(isLinks ? 'links' : isList ? 'list' : isImport ? 'import' : isJob ? 'job' : 'other');
    if (fault) return sendFault(res, fault);
    const authenticated = await authenticate(req, res, projectId);
    if (!authenticated) return;
    if (isImport) return jobs.startImport(req, res, rest[0] as string, authenticated.body);
    if (isJob) return jobs.status(res, rest[0] as string, rest[2] as string);

    if (rest.length === 0) return listGraphs(res, rawQuery, camel);
    if (rest.length === 1 && rest[0] === 'backups') return listBackups(res, rawQuery, camel, undefined);
    const graphId = rest[0] as string;
    if (rest.length === 1) {
      const g = ctx.model.graphs.get(graphId);
      if (!g) return gesError(res, 'GES.7000', 'The graph does not exist or has been deleted.', camel);
      return sendJson(res, 200, { graph: { id: g.id, name: g.name, status: '200', region_code: ctx.projectName, arch: 'x86_64' } });
    }
    if (isList) return listBackups(res, rawQuery, camel, graphId);
    if (isLinks) return backupFiles(req, res, rawQuery, graphId);
    return notFound();
  };
}
