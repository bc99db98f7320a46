/**
 * Where the archive lands (docs/contract.md): `{prefix}{graphId}/{backupId}/{fileName}` and
 * `{prefix}{graphId}/{backupId}/manifest.json`. Every segment is checked to be a single safe
 * path segment by the caller (assertSafeFileName, the manifest's id schema).
 */
export const ARCHIVE_MANIFEST_NAME = 'manifest.json';

export function backupPrefix(prefix: string, graphId: string, backupId: string): string {
  return `${prefix}${graphId}/${backupId}/`;
}

export function fileKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${backupPrefix(prefix, graphId, backupId)}${fileName}`;
}

export function manifestKey(prefix: string, graphId: string, backupId: string): string {
  return fileKey(prefix, graphId, backupId, ARCHIVE_MANIFEST_NAME);
}

export function runReportKey(prefix: string, runId: string): string {
  return `${prefix}_runs/${runId}.json`;
}

/**
 * A graph's report in a run planned per graph, sorted right after the run's own report. One
 * folder below the prefix like it, so the archiving roles cannot delete it either (their delete
 * right starts two folders down: serverless.yml, CleanUpOwnWrites).
 */
export function graphReportKey(prefix: string, runId: string, graphId: string): string {
  return `${prefix}_runs/${runId}.graph.${graphId}.json`;
}
