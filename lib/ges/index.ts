export type { GesBackup, GesBackupFile, GesBackupFiles } from './types.js';
export { createGesClient, BACKUP_PAGE_LIMIT, ListingIncompleteError, type GesClient, type GesClientDeps } from './client.js';
export { gesErrorFromResponse, gesErrorFromNetwork, parseErrorBody, parseRetryAfter, normalizeRemoteCode } from './errors.js';
