// A single-node OpenStack Swift with the s3api middleware: the local S3 store for tests.
// Proxy, object, container and account servers plus memcached, each one foreground process
// (workers = 0) bound to 127.0.0.1 on a free ephemeral port, storage in a plain directory.
// See docs/local-stack.md for why Swift and for the settings used here.
//
// Library:  const swift = await startSwift({ dir }); ...; await swift.stop();
// CLI:      npx tsx scripts/local-stack/swift.ts start --dir D   (prints one JSON line)
//           npx tsx scripts/local-stack/swift.ts stop --dir D
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect, promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SwiftStack {
  endpoint: string;
  accessKeyId: 'test:tester';
  secretAccessKey: 'testing';
  region: 'us-east-1';
  /** Directory holding configuration, rings, storage (node/), logs (log/) and the pid file. */
  dir: string;
  stop(): Promise<void>;
}

export interface StartSwiftOptions {
  /** Where to keep everything. Default: a new temporary directory, removed again by stop(). */
  dir?: string;
  /** Keep the servers running after this process exits (the CLI uses this). Default false. */
  detached?: boolean;
  /** How long to wait for the stack to answer. Default 60 s (start-up is 4–9 s on an idle machine). */
  readyTimeoutMs?: number;
}

interface PidFile {
  endpoint: string;
  pids: Record<string, number>;
}

const SERVERS = ['account', 'container', 'object'] as const;
const BIN = '/usr/bin';
const MEMCACHED = '/usr/bin/memcached';
const PID_FILE = 'swift.pids.json';
const ACCESS_KEY_ID = 'test:tester';
const SECRET_ACCESS_KEY = 'testing';

/**
 * The AWS SDK environment that points a process (the archiver's CLI, a benchmark baseline) at
 * this stack: endpoint, tempauth credentials, and checksums only when required (Swift's s3api
 * rejects aws-chunked bodies).
 */
export function swiftAwsEnv(swift: Pick<SwiftStack, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: swift.endpoint,
    AWS_REGION: swift.region,
    AWS_ACCESS_KEY_ID: swift.accessKeyId,
    AWS_SECRET_ACCESS_KEY: swift.secretAccessKey,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    S3_FORCE_PATH_STYLE: 'true',
  };
}

export function swiftInstalled(): boolean {
  return [
    `${BIN}/swift-proxy-server`, `${BIN}/swift-object-server`, `${BIN}/swift-container-server`,
    `${BIN}/swift-account-server`, `${BIN}/swift-ring-builder`, MEMCACHED,
  ].every((path) => existsSync(path));
}

export async function startSwift(opts: StartSwiftOptions = {}): Promise<SwiftStack> {
  if (!swiftInstalled()) {
    throw new Error('OpenStack Swift is not installed: run `sudo bash scripts/local-stack/install.sh`');
  }
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir === undefined ? await mkdtemp(join(tmpdir(), 'ges-swift-')) : resolve(opts.dir);
  if (existsSync(join(dir, PID_FILE))) {
    throw new Error(`Swift already running from ${dir} (found ${PID_FILE}); stop it first`);
  }
  const etc = join(dir, 'etc');
  const logs = join(dir, 'log');
  // A fresh store every start: the rings name this run's ports.
  await rm(join(dir, 'node'), { recursive: true, force: true });
  await rm(etc, { recursive: true, force: true });
  await Promise.all([mkdir(join(dir, 'node', 'd1'), { recursive: true }), mkdir(etc, { recursive: true }), mkdir(logs, { recursive: true })]);

  const [proxyPort, accountPort, containerPort, objectPort, memcachePort] = await freePorts(5) as
    [number, number, number, number, number];
  const backendPorts = { account: accountPort, container: containerPort, object: objectPort };
  const endpoint = `http://127.0.0.1:${proxyPort}`;

  const children: ChildProcess[] = [];
  const pids: Record<string, number> = {};
  const killAllSync = (): void => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  if (!opts.detached) process.once('exit', killAllSync);

  const launch = (name: string, command: string, args: string[]): ChildProcess => {
    const log = openSync(join(logs, `${name}.log`), 'a');
    try {
      const child = spawn(command, args, { cwd: dir, stdio: ['ignore', log, log], detached: opts.detached ?? false });
      child.on('error', () => { /* reported through exitCode/readiness; the log file has details */ });
      if (opts.detached) child.unref();
      children.push(child);
      if (child.pid !== undefined) pids[name] = child.pid;
      return child;
    } finally {
      closeSync(log);
    }
  };

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killAllSync);
    await stopPids(Object.values(pids));
    await rm(join(dir, PID_FILE), { force: true });
    if (ownsDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const memcachedArgs = ['-l', '127.0.0.1', '-p', String(memcachePort), '-U', '0', '-m', '64'];
    if (process.getuid?.() === 0) memcachedArgs.push('-u', 'root');
    launch('memcached', MEMCACHED, memcachedArgs);

    // Backend servers do not read the rings at start, so they boot while the rings are built.
    for (const server of SERVERS) {
      const conf = join(etc, `${server}-server.conf`);
      await writeFile(conf, backendConf(server, backendPorts[server], dir));
      launch(server, `${BIN}/swift-${server}-server`, [conf, '-v']);
    }
    await buildRings(etc, backendPorts);

    const proxyConf = join(etc, 'proxy-server.conf');
    await writeFile(proxyConf, proxyConfText(proxyPort, memcachePort, dir));
    launch('proxy', `${BIN}/swift-proxy-server`, [proxyConf, '-v']);

    await writeFile(join(dir, PID_FILE), JSON.stringify({ endpoint, pids } satisfies PidFile) + '\n');
    await waitReady(endpoint, children, logs, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await stopPids(Object.values(pids));
    process.removeListener('exit', killAllSync);
    await rm(join(dir, PID_FILE), { force: true });
    throw new Error(`Swift did not start; logs are in ${logs}`, { cause: err });
  }

  return { endpoint, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, region: 'us-east-1', dir, stop };
}

/** Stops a stack started (possibly by another process) in `dir`, using its pid file. */
export async function stopSwift(dir: string): Promise<boolean> {
  const file = join(resolve(dir), PID_FILE);
  if (!existsSync(file)) return false;
  const { pids } = JSON.parse(await readFile(file, 'utf8')) as PidFile;
  await stopPids(Object.values(pids));
  await rm(file, { force: true });
  return true;
}

async function freePorts(count: number): Promise<number[]> {
  // Hold every listener open until all are allocated so the ports are distinct.
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>(
    (ok, fail) => {
      const server = createServer();
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok(server));
    })));
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port assigned');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((ok) => server.close(() => ok()))));
  return ports;
}

// swift-ring-builder's own main(), run nine times in one interpreter: each separate
// `swift-ring-builder` call pays ~1 s of Python start-up, which would dominate start-up.
const RING_SCRIPT = `
import sys
from swift.cli.ringbuilder import main
for builder, device in zip(sys.argv[1::2], sys.argv[2::2]):
    for args in (['create', '8', '1', '0'], ['add', device, '1'], ['rebalance']):
        try:
            main(['swift-ring-builder', builder] + args)
        except SystemExit as e:
            # 1 means "done, with warnings"; anything else is a failure.
            if e.code not in (None, 0, 1):
                raise
`;

async function buildRings(etc: string, ports: Record<typeof SERVERS[number], number>): Promise<void> {
  const args = SERVERS.flatMap((server) => [join(etc, `${server}.builder`), `r1z1-127.0.0.1:${ports[server]}/d1`]);
  await mkdir(join(etc, 'backups'), { recursive: true });
  // Debian's interpreter by full path: python3 on PATH may be a shim without Swift's modules.
  await execFileAsync('/usr/bin/python3', ['-c', RING_SCRIPT, ...args], { cwd: etc });
}

function commonConf(port: number, dir: string): string {
  return [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    `swift_dir = ${join(dir, 'etc')}`,
    `devices = ${join(dir, 'node')}`,
    'mount_check = false',
    'disable_fallocate = true',
    'log_level = INFO',
    // Logs go to the console (-v), which is the log file; keep syslog out of it.
    'log_facility = LOG_LOCAL0',
    'log_udp_host = 127.0.0.1',
    'log_udp_port = 9',
    '',
  ].join('\n');
}

function backendConf(server: typeof SERVERS[number], port: number, dir: string): string {
  return commonConf(port, dir) + [
    '[pipeline:main]',
    `pipeline = ${server}-server`,
    '',
    `[app:${server}-server]`,
    `use = egg:swift#${server}`,
    '',
    `[${server}-replicator]`,
    '',
    `[${server}-auditor]`,
    '',
    ...(server === 'account' ? [] : [`[${server}-updater]`, '']),
    ...(server === 'container' ? ['[container-sync]', ''] : []),
  ].join('\n');
}

function proxyConfText(port: number, memcachePort: number, dir: string): string {
  return commonConf(port, dir) + `
[pipeline:main]
# s3api must come before tempauth; completed multipart uploads are SLO manifests.
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachePort}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# AWS allows 10,000 parts per upload.
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET_ACCESS_KEY} .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo
`;
}

async function waitReady(endpoint: string, children: ChildProcess[], logs: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = children.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (dead !== undefined) {
      throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}); see ${logs}`);
    }
    try {
      const health = await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) });
      await health.body?.cancel();
      if (health.status !== 200) throw new Error(`/healthcheck answered ${health.status}`);
      const auth = await fetch(`${endpoint}/auth/v1.0`, {
        headers: { 'X-Auth-User': ACCESS_KEY_ID, 'X-Auth-Key': SECRET_ACCESS_KEY },
        signal: AbortSignal.timeout(2000),
      });
      await auth.body?.cancel();
      const token = auth.headers.get('x-auth-token');
      const storageUrl = auth.headers.get('x-storage-url');
      if (auth.status !== 200 || token === null || storageUrl === null) {
        throw new Error(`/auth/v1.0 answered ${auth.status}`);
      }
      // The round trip: the token must open the account, which reaches the backend servers.
      const account = await fetch(storageUrl, { method: 'HEAD', headers: { 'X-Auth-Token': token }, signal: AbortSignal.timeout(2000) });
      await account.body?.cancel();
      if (account.status >= 200 && account.status < 300) return;
      throw new Error(`HEAD account answered ${account.status}`);
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`not ready after ${timeoutMs} ms: ${last}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A server whose parent is gone (the CLI's) stays a zombie until init reaps it: that is dead.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two checks
  }
}

async function stopPids(pids: number[], graceMs = 5000): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  for (const pid of pids.filter(alive)) signal(pid, 'SIGKILL');
  while (pids.some(alive)) await new Promise((ok) => setTimeout(ok, 20));
}

async function cli(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const dirIndex = rest.indexOf('--dir');
  const dir = dirIndex >= 0 ? rest[dirIndex + 1] : undefined;
  if ((command !== 'start' && command !== 'stop') || dir === undefined) {
    process.stderr.write('usage: swift.ts start|stop --dir DIR\n');
    process.exitCode = 2;
    return;
  }
  if (command === 'start') {
    const started = Date.now();
    const swift = await startSwift({ dir, detached: true });
    const { endpoint, accessKeyId, secretAccessKey, region } = swift;
    process.stdout.write(JSON.stringify({
      endpoint, accessKeyId, secretAccessKey, region, dir: swift.dir,
      pidFile: join(swift.dir, PID_FILE), startupMs: Date.now() - started,
    }) + '\n');
  } else if (!(await stopSwift(dir))) {
    process.stderr.write(`no ${PID_FILE} in ${dir}: nothing to stop\n`);
  }
}

// Run as a CLI only when this file is the entry point, not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${inspect(err)}\n`); // with its cause
    process.exitCode = 1;
  });
}
