export * from './finalize.js';
export * from './messages.js';
export * from './plan-fanout.js';
export { checkpointKey, finalizeLockKey, jobKey, type FanoutJob } from '../store/fanout-state.js';
export * from './types.js';
export * from './worker.js';
