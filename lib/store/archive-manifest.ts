import * as z from 'zod';

/**
 * The per-backup `manifest.json` written last into `{prefix}{graphId}/{backupId}/`. Its
 * presence means "this backup is archived and verified"; `verify` and `list` read it back.
 */
export const archiveManifestSchema = z.object({
  version: z.literal(1),
  graphId: z.string().min(1),
  backupId: z.string().min(1),
  backupName: z.string().optional(),
  /** When GES took the backup (ISO 8601 UTC), from the backup list's start_timestamp. */
  backupTime: z.string().optional(),
  archivedAt: z.string().min(1),
  runId: z.string().optional(),
  fileCount: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  files: z.array(z.object({
    name: z.string().min(1),
    key: z.string().min(1),
    bytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })),
});

export type ArchiveManifest = z.infer<typeof archiveManifestSchema>;
export type ArchivedFile = ArchiveManifest['files'][number];

export function buildArchiveManifest(input: {
  graphId: string;
  backupId: string;
  backupName?: string | undefined;
  backupTimestamp?: number | undefined;
  archivedAt: Date;
  runId?: string | undefined;
  files: ArchivedFile[];
}): ArchiveManifest {
  const files = [...input.files].sort((a, b) => a.name.localeCompare(b.name));
  return {
    version: 1,
    graphId: input.graphId,
    backupId: input.backupId,
    ...(input.backupName === undefined ? {} : { backupName: input.backupName }),
    ...(input.backupTimestamp === undefined ? {} : { backupTime: new Date(input.backupTimestamp).toISOString() }),
    archivedAt: input.archivedAt.toISOString(),
    ...(input.runId === undefined ? {} : { runId: input.runId }),
    fileCount: files.length,
    totalBytes: files.reduce((sum, f) => sum + f.bytes, 0),
    files,
  };
}
