export * from './restore.js';
export * from './target.js';
export * from './types.js';
export { RESTORED_SHA256_METADATA } from './s3-target.js';
