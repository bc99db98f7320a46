import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of lib/, lowest first: a folder may import the lib/ root modules (errors, log,
 * retry, config...) and the folders of the tiers below its own, never its own tier's other
 * folders nor anything above. cli/ and functions/ sit on top and may import all of lib/; lib/
 * never imports them. The README's "Where things live" says the same in words;
 * test/unit/layers.test.ts checks the whole import graph (dynamic imports too) against it.
 */
export const layers = [
  ['store'], // bucket layout and every S3 access
  ['ges', 'copy'], // the GES + IAM client; the HTTP source → S3 object copier
  ['links'], // backup download links: expiry, validation, refresh from GES
  ['catalog'], // what the bucket holds (listing, manifests)
  ['archive'], // inline orchestration of a run
  ['alerts', 'metrics'],
  ['fanout'], // the queue side
  ['verify', 'prune'],
  ['restore', 'drill'], // the way back; the restore drill (planner and worker)
  ['app'], // use cases and the composition root, called by cli/ and functions/
];

const upward = (tier) => layers.slice(tier).flat();
const layerRules = [
  {
    files: ['lib/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^\\./[^/]+/', message: 'A lib/ root module imports no lib/ folder (layers: eslint.config.js).' }] }] },
  },
  ...layers.flatMap((tier, i) => tier.map((folder) => ({
    files: [`lib/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { regex: `^\\.\\./(${upward(i).filter((f) => f !== folder).join('|')})/`, message: `lib/${folder} may import only lower layers (eslint.config.js, layers).` },
          { regex: '^(\\.\\./)+(cli|functions)/', message: 'lib/ never imports cli/ or functions/.' },
        ],
      }],
    },
  }))),
  {
    files: ['cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^(\\.\\./)+functions/', message: 'cli/ and functions/ share code through lib/ only.' }] }] },
  },
  {
    files: ['functions/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^(\\.\\./)+cli/', message: 'cli/ and functions/ share code through lib/ only.' }] }] },
  },
];

export default tseslint.config(
  { ignores: ['node_modules/', '.serverless/', '.esbuild/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      'no-restricted-syntax': ['error', {
        selector: "MemberExpression[object.name='process'][property.name='env']",
        message: 'Read the environment only in lib/config.ts, the CLI and the Lambda composition roots.',
      }],
    },
  },
  {
    files: ['lib/config.ts', 'cli/**', 'functions/**', 'test/**', 'bench/**', 'scripts/**', 'bin/**', '*.js'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  ...layerRules,
  {
    files: ['**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
  },
);
