export * from './archive-backup.js';
export * from './archive-manifest.js';
export * from './keys.js';
export * from './plan.js';
export * from './run.js';
export * from './run-manifest.js';
export * from './types.js';
export * from './lambda-entry.js';
