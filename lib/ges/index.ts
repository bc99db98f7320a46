export type { GesBackup, GesBackupFile, GesBackupFiles, GesJob } from './types.js';
export { createGesClient, BACKUP_PAGE_LIMIT, ListingIncompleteError, type GesClient, type GesClientDeps, type GesImportApi } from './client.js';
export { gesErrorFromResponse, gesErrorFromNetwork, parseErrorBody, normalizeRemoteCode } from './errors.js';
export { waitForJob, type JobPoll, type JobWaitOptions } from './jobs.js';
