// `npm run build`, and `prepare` (so `npm ci` and `npm pack` run it): bundles the command line
// (cli/main.ts, everything it imports and the runtime dependencies) into dist/, which
// bin/ges-archiver.js loads. Nothing is compiled at run time and nothing is read from
// node_modules, so the packed tarball (bin/ + dist/) works wherever Node.js does.
//
//   dist/cli.js                   the entry: commander and the command definitions only
//   dist/chunks/*.js              what a command imports when it runs (AWS SDK, undici, zod...)
//   dist/THIRD-PARTY-LICENSES.txt the licenses of the bundled packages
//   dist/meta.json                esbuild's metafile (which input went where); not packed
//
// `--if-stale` builds only when dist/cli.js is missing or older than a file it is built from
// (scripts/setup.sh and the built-CLI tests use it; a checkout edited after `npm ci` rebuilds).
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import undiciOnEveryNode22 from './esbuild-undici-node22.cjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// Bundled CommonJS dependencies (pino, the AWS SDK, cli-progress) call require() and read
// __dirname, which an ES module does not have: every output file defines them first (as
// serverless.yml does for the Lambdas).
const CJS_SHIMS = [
  "import { createRequire as __gesCreateRequire } from 'node:module';",
  "import { fileURLToPath as __gesFileURLToPath } from 'node:url';",
  "import { dirname as __gesDirname } from 'node:path';",
  'const require = __gesCreateRequire(import.meta.url);',
  'const __filename = __gesFileURLToPath(import.meta.url);',
  'const __dirname = __gesDirname(__filename);',
].join(' ');

// undici 8 reads two Node.js functions missing before 22.15 / 22.10 as it loads: the plugin in
// scripts/esbuild-undici-node22.cjs (shared with the Lambda bundles, serverless.yml) gives it
// stand-ins, so the command runs on every Node.js 22 (test/integration/built-cli.test.ts).

/** `.../node_modules/@scope/name/lib/x.js` -> the package folder, or undefined for our sources. */
function packageDir(input) {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return match ? join(root, match[1]) : undefined;
}

/** One text with every bundled package's license, packages with the same text grouped. */
function thirdPartyLicenses(metafile) {
  const dirs = new Set(Object.keys(metafile.inputs).map(packageDir).filter((dir) => dir !== undefined));
  const byText = new Map();
  for (const dir of dirs) {
    const { name, version, license } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? readFileSync(join(dir, file), 'utf8').trim() : `${license ?? 'UNKNOWN'} (no license file in the package)`;
    byText.set(text, [...(byText.get(text) ?? []), `${name}@${version}`]);
  }
  const sections = [...byText].map(([text, names]) => `${names.sort().join(', ')}\n\n${text}`);
  return `ges-archiver ${pkg.version} bundles the following packages.\n\n${sections.sort().join(`\n\n${'-'.repeat(72)}\n\n`)}\n`;
}

/** The newest modification time among the files the bundle is built from. */
function newestSourceTime() {
  const files = ['package.json', 'package-lock.json', 'scripts/build-cli.js', 'scripts/esbuild-undici-node22.cjs'].map((f) => join(root, f));
  for (const dir of ['cli', 'lib']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) files.push(join(entry.parentPath, entry.name));
    }
  }
  return Math.max(...files.filter((f) => existsSync(f)).map((f) => statSync(f).mtimeMs));
}

if (process.argv.includes('--if-stale')) {
  const entry = join(outDir, 'cli.js');
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestSourceTime()) process.exit(0);
}

rmSync(outDir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: 'cli/main.ts' },
  outdir: outDir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The ES module builds where a package has one (the AWS SDK's dist-es): esbuild drops what is
  // not imported and needs no CommonJS wrappers. Measured: 3.5 -> 2.9 MiB, and a run archiving
  // one small file takes ~20 % less time, nearly all of it start-up.
  mainFields: ['module', 'main'],
  target: 'node22',
  // The commands import their heavy modules dynamically (cli/main.ts); splitting puts those
  // in chunks, so `--help` and `--version` parse about 100 KB instead of 3 MB.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  minifySyntax: true,
  minifyWhitespace: true,
  // Stack traces map back to the sources with NODE_OPTIONS=--enable-source-maps.
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  banner: { js: CJS_SHIMS },
  define: { GES_ARCHIVER_VERSION: JSON.stringify(pkg.version) },
  logLevel: 'warning',
  metafile: true,
  plugins: undiciOnEveryNode22,
});
writeFileSync(join(outDir, 'meta.json'), JSON.stringify(result.metafile));
writeFileSync(join(outDir, 'THIRD-PARTY-LICENSES.txt'), thirdPartyLicenses(result.metafile));
const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .reduce((sum, [, out]) => sum + out.bytes, 0);
process.stderr.write(`build-cli: ges-archiver ${pkg.version} bundled into dist/ (${(bytes / 1024 / 1024).toFixed(1)} MiB of JavaScript)\n`);
