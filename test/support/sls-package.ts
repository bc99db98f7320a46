// `sls package` (osls, the Serverless Framework v3 line) of a temporary copy of the service,
// offline and without AWS credentials: serverless-esbuild writes .esbuild/ into the service
// directory, and several people share this checkout. Used by the package test (the template and
// the bundles) and by scripts/invoke-local's test (the bundles it runs).
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** A temporary directory holding what `sls package` reads, with the checkout's node_modules linked in. */
export function copyService(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ges-sls-'));
  for (const entry of ['serverless.yml', 'package.json', 'tsconfig.json', 'functions', 'lib', 'scripts/esbuild-undici-node22.cjs']) {
    cpSync(join(root, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Packages `serviceDir` into `outDir` (the zips and the CloudFormation template), with `--param=` overrides. */
export function packageService(serviceDir: string, outDir: string, params: readonly string[] = []): void {
  // No AWS credentials, no profile, no network: what CI and a fresh checkout have.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  Object.assign(env, {
    HOME: serviceDir,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    AWS_SDK_LOAD_CONFIG: '0',
  });
  execFileSync(process.execPath, [
    join(root, 'node_modules/osls/bin/serverless.js'), 'package', '--package', outDir, ...params.map((p) => `--param=${p}`),
  ], {
    cwd: serviceDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 170_000,
  });
}
