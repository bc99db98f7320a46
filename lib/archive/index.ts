export * from './archive-backup.js';
export * from '../store/archive-manifest.js';
export * from '../store/keys.js';
export * from './plan.js';
export * from './run.js';
export * from './run-manifest.js';
export * from './types.js';
