export * from './duration.js';
export * from './plan.js';
export * from './prune.js';
export * from './types.js';
export * from './scheduled.js';
