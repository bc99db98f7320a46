export * from './copy-metrics.js';
export * from './freshness.js';
export * from './names.js';
export * from './run-metrics.js';
export * from './sink.js';
