export * from './list.js';
export * from './read-manifest.js';
export * from './scan.js';
export * from './types.js';
