// A GES + IAM + OBS emulator for tests, the README demo and the benchmark.
// GES and IAM share one HTTP server; OBS runs on another. Both bind 127.0.0.1 on port 0.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AkSkVerifier } from './aksk.js';
import { FaultState } from './faults.js';
import { createGesHandler } from './ges-server.js';
import { sendBody } from './http-util.js';
import { Model, TokenStore } from './model.js';
import { createObsHandler } from './obs-server.js';
import type { Emulator, EmulatorOptions, EmulatorStats } from './types.js';

export type * from './types.js';
export { parseRange } from './obs-server.js';
export { formatLinkExpiredTime } from './ges-server.js';

export const DEFAULT_PROJECT_ID = 'a4a5d4098fb4474fa22cd05f897d6b99';
export const DEFAULT_PROJECT_NAME = 'cn-north-4';
export const DEFAULT_USER = { name: 'archiver', password: 'archiver-password', domain: 'example-domain' } as const;
/** The AK/SK the emulator accepts unless `accessKeys` says otherwise (shaped like real ones: 20 and 40 characters). */
export const DEFAULT_ACCESS_KEY = { accessKey: 'EMULATORAK0000000001', secretKey: 'emulatorSecretKey0000000000000000000000S' } as const;

function newStats(): EmulatorStats {
  return {
    linkRequests: 0, listRequests: 0, tokenRequests: 0, failedLogins: 0, signedRequests: 0, refusedSignatures: 0, tokenHeaderRequests: 0, downloadRequests: 0,
    downloadBytes: new Map(), requestsByHost: new Map(), rangeRequests: 0, authHeadersSentToObs: 0,
    importRequests: 0, imports: [], jobStatusRequests: 0,
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function serve(handler: Handler): Server {
  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    handler(req, res).catch((err: unknown) => {
      // A bug in the emulator must surface in the test that hit it, not vanish.
      console.error('ges-emulator: handler failed', err);
      if (!res.headersSent) sendBody(res, 500, 'emulator error', 'text/plain');
      else res.destroy();
    });
  });
  return server;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const projectId = opts.projectId ?? DEFAULT_PROJECT_ID;
  const projectName = opts.projectName ?? DEFAULT_PROJECT_NAME;
  const users = opts.users ?? [{ ...DEFAULT_USER }];
  const bucket = opts.bucket ?? `ges-backup-${projectName}`;
  const model = new Model(opts.graphs);
  const tokens = new TokenStore(opts.staticTokens ?? [], projectId, projectName);
  const stats = newStats();
  const aksk = new AkSkVerifier(opts.accessKeys ?? [{ ...DEFAULT_ACCESS_KEY }], opts.gatewayClock ?? Date.now);
  const faults = new FaultState({
    invalidateTokens: (includeStatic) => tokens.invalidate(includeStatic),
    changeFile: (g, b, n, seed) => model.changeFile(g, b, n, seed),
    restoreFiles: () => model.restoreFiles(),
  });

  let obsPort = 0;
  let gesPort = 0;
  const gesServer = serve(createGesHandler({
    model, tokens, aksk, faults, stats, options: opts, projectId, projectName, users, bucket,
    linkAuthority: () => `${opts.linkHost ?? '127.0.0.1'}:${obsPort}`,
    gesEndpoint: () => `http://127.0.0.1:${gesPort}`,
  }));
  const obsServer = serve(createObsHandler({ model, faults, stats, options: opts, bucket, region: projectName }));
  try {
    [gesPort, obsPort] = await Promise.all([listen(gesServer), listen(obsServer)]);
  } catch (err) {
    await Promise.all([closeServer(gesServer), closeServer(obsServer)]);
    throw new Error('ges-emulator: could not listen on 127.0.0.1', { cause: err });
  }

  const gesEndpoint = `http://127.0.0.1:${gesPort}`;
  return {
    gesEndpoint,
    iamEndpoint: gesEndpoint,
    obsEndpoint: `http://127.0.0.1:${obsPort}`,
    projectId,
    projectName,
    stats,
    faults,
    fileSha256: (g, b, n) => model.file(g, b, n).content.sha256(),
    fileBytes: (g, b, n) => model.file(g, b, n).content.bytes,
    fileEtag: (g, b, n) => model.file(g, b, n).content.etag,
    addBackup: (g, backup) => model.addBackup(g, backup),
    resetStats: () => {
      // In place, so references a test holds to `stats` or its maps stay live.
      const { downloadBytes, requestsByHost } = stats;
      downloadBytes.clear();
      requestsByHost.clear();
      Object.assign(stats, newStats(), { downloadBytes, requestsByHost });
    },
    close: async () => {
      await Promise.all([closeServer(gesServer), closeServer(obsServer)]);
    },
  };
}
