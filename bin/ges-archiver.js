#!/usr/bin/env node
// The `ges-archiver` command (npx, a global install, `node bin/ges-archiver.js`). Plain
// JavaScript that old Node.js versions still parse, so they get one line naming the version
// needed instead of a crash inside a dependency; then it loads the bundle that
// scripts/build-cli.js writes to dist/ (built by `npm ci`, shipped in the packed tarball).
import { existsSync } from 'fs';
import module from 'module';
import { fileURLToPath } from 'url';
import { hostHugePagesEnv } from './huge-pages.js';

// package.json "engines" says the same. (undici 8 declares >=22.19.0 but runs on every Node.js
// 22 in the bundle: see scripts/build-cli.js; CI runs the built command on 22.0.0.)
const NEED = [22, 0, 0];
const found = process.versions.node;
const have = found.split('.').map((part) => parseInt(part, 10));
const cmp = have[0] - NEED[0] || have[1] - NEED[1] || have[2] - NEED[2];
if (!(cmp >= 0)) {
  process.stderr.write(`ges-archiver: needs Node.js >= ${NEED.join('.')}, but found Node.js ${found} (${process.execPath}); put Node.js ${NEED.join('.')} or later first on PATH and run it again\n`);
  process.exit(2);
}

const bundle = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(bundle)) {
  const dir = fileURLToPath(new URL('..', import.meta.url));
  process.stderr.write(`ges-archiver: the built command ${fileURLToPath(bundle)} is missing; run \`npm ci\` (or \`npm run build\`) in ${dir}\n`);
  process.exit(2);
}

// The commands that copy start again once with huge pages for their part buffers (see
// huge-pages.js). If that cannot be done, they go on here, with ordinary pages.
const relaunch = hostHugePagesEnv(process.argv.slice(2), process.env);
if (relaunch !== undefined) {
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], relaunch);
  } catch {
    // execve(2) failed and this process is unchanged: go on with ordinary pages.
  }
}

// Later starts reuse V8's compiled code for the bundle (cached in the OS temp directory;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off). Node.js 22.0 has no compile cache yet.
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
import(bundle.href)
  .then(({ main }) => main({ argv: process.argv.slice(2), env: process.env, stdout: process.stdout, stderr: process.stderr }))
  .then((code) => { process.exitCode = code; });
