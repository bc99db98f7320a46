// An esbuild plugin, shared by the CLI build (scripts/build-cli.js) and the Lambda bundles
// (serverless.yml, custom.esbuild.plugins: serverless-esbuild require()s this file, hence
// CommonJS; it exports the array of plugins serverless-esbuild expects).
//
// undici 8 declares Node.js >= 22.19 and reads two newer Node.js functions as it loads: zlib's
// zstd decompressor (Node.js 22.15; bound by its decompress interceptor, which the archiver never
// uses: it sends no Accept-Encoding) and worker_threads' markAsUncloneable (22.10; marks its
// fetch objects as not structured-cloneable, which the archiver never tries). On an older 22,
// either missing function stops the program at start. So undici's own imports of those two
// modules get Node.js's module, or, where the function is missing, a copy with a stand-in: a
// zstd factory that fails when called, naming the version it needs, and a no-op mark. Every
// other function is Node.js's own. With this the command and the Lambda handlers load on every
// Node.js 22 (test/integration/built-cli.test.ts, test/unit/serverless/package.test.ts).
'use strict';

const UNDICI_BUILTINS = {
  zlib: [
    "const zlib = require('node:zlib');",
    "module.exports = typeof zlib.createZstdDecompress === 'function' ? zlib : {",
    '  ...zlib,',
    "  createZstdDecompress() { throw new Error('zstd content encoding needs Node.js >= 22.15'); },",
    '};',
  ].join('\n'),
  worker_threads: [
    "const threads = require('node:worker_threads');",
    "module.exports = typeof threads.markAsUncloneable === 'function' ? threads : { ...threads, markAsUncloneable() {} };",
  ].join('\n'),
};

/** @type {import('esbuild').Plugin} */
const undiciOnEveryNode22 = {
  name: 'undici-on-every-node-22',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(zlib|worker_threads)$/ }, (args) => (/node_modules\/undici\//.test(args.importer)
      ? { path: args.path.replace(/^node:/, ''), namespace: 'undici-builtins' }
      : undefined));
    b.onLoad({ filter: /.*/, namespace: 'undici-builtins' }, (args) => ({ contents: UNDICI_BUILTINS[args.path], loader: 'js' }));
  },
};

module.exports = [undiciOnEveryNode22];
