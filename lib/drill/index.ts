export * from './alert.js';
export * from './check-backup.js';
export * from './messages.js';
export * from './plan.js';
export * from './select.js';
export * from './worker.js';
