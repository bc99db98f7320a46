export * from './compare.js';
export * from './hash-object.js';
export * from './sample.js';
export * from './types.js';
export * from './verify.js';
