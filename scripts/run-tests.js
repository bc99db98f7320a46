// `npm test`: runs jest under this Node (22, from the `node` devDependency) with native ES
// modules, then prints the plain summary line `N passed, M failed`. A run that executed no
// test is a failure. Extra arguments go to jest (`npm test -- test/integration`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SWIFT_BINARIES = [
  '/usr/bin/swift-proxy-server', '/usr/bin/swift-object-server', '/usr/bin/swift-container-server',
  '/usr/bin/swift-account-server', '/usr/bin/swift-ring-builder', '/usr/bin/memcached',
];

function say(line) {
  process.stderr.write(`run-tests: ${line}\n`);
}

/** Swift is the local S3 store: install it on a fresh machine when we may, else explain. */
function ensureSwift() {
  if (process.env.TEST_S3_ENDPOINT) return true; // an S3 endpoint was given: no local Swift needed
  if (SWIFT_BINARIES.every((path) => existsSync(path))) return true;
  if (process.getuid?.() === 0) {
    say('OpenStack Swift is not installed; installing it with scripts/local-stack/install.sh');
    const install = spawnSync('bash', [join(root, 'scripts/local-stack/install.sh')], { stdio: 'inherit' });
    if (install.status === 0) return true;
    say('installing Swift failed');
    return false;
  }
  say('the tests need OpenStack Swift (the local S3 store) and memcached, which are not installed.');
  say('Install them as root with:  sudo bash scripts/local-stack/install.sh');
  say('(Debian packages: swift swift-proxy swift-object swift-container swift-account python3-swift memcached curl)');
  say('or point the tests at a running S3-compatible store with TEST_S3_ENDPOINT.');
  return false;
}

function finish(passed, failed, exitCode) {
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = exitCode;
}

function runJest(args) {
  const outDir = mkdtempSync(join(tmpdir(), 'ges-jest-'));
  const outputFile = join(outDir, 'results.json');
  const nodeOptions = [process.env.NODE_OPTIONS, '--experimental-vm-modules', '--disable-warning=ExperimentalWarning']
    .filter(Boolean).join(' ');
  const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
  const child = spawn(process.execPath, [jestBin, '--json', `--outputFile=${outputFile}`, ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));

  child.on('exit', (code, signal) => {
    let results;
    try {
      results = JSON.parse(readFileSync(outputFile, 'utf8'));
    } catch (err) {
      say(`jest wrote no report (exit ${code ?? signal}): ${err.message}`);
    }
    rmSync(outDir, { recursive: true, force: true });
    const passed = results?.numPassedTests ?? 0;
    const failed = results?.numFailedTests ?? 0;
    const total = results?.numTotalTests ?? 0;
    if (results !== undefined && total === 0) say('no test ran; that is a failure');
    const ok = code === 0 && results !== undefined && total > 0 && results.success !== false;
    finish(passed, failed, ok ? 0 : (code || 1));
  });
}

if (ensureSwift()) runJest(process.argv.slice(2));
else finish(0, 0, 1);
