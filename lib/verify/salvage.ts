import { archiveManifestSchema, type ArchivedFile } from '../store/archive-manifest.js';
import { ARCHIVE_MANIFEST_NAME } from '../store/keys.js';
import type { BackupFolder } from '../catalog/types.js';

const fileEntrySchema = archiveManifestSchema.shape.files.element;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface SalvagedEntries {
  /** The entries that can still be checked: valid, in the backup's folder, each name once. */
  files: ArchivedFile[];
  /** Every key an entry names, readable or not: those objects are not `extra`. */
  listedKeys: Set<string>;
}

/**
 * What an unusable manifest.json still says: when it is JSON with a `files` array, every entry
 * that reads as a file of this backup (the schema's entry shape, its key `{folder}{name}`, a
 * name not seen before) is still checked. `undefined` when there is no `files` array at all
 * (then nothing in the folder can be judged: no file checks, no `extra`).
 */
export function salvageEntries(data: unknown, folder: BackupFolder): SalvagedEntries | undefined {
  if (!isRecord(data) || !Array.isArray(data['files'])) return undefined;
  const files: ArchivedFile[] = [];
  const listedKeys = new Set<string>();
  const names = new Set<string>();
  for (const entry of data['files'] as unknown[]) {
    if (isRecord(entry) && typeof entry['key'] === 'string') listedKeys.add(entry['key']);
    const parsed = fileEntrySchema.safeParse(entry);
    if (!parsed.success) continue;
    const f = parsed.data;
    if (f.name.includes('/') || f.name === ARCHIVE_MANIFEST_NAME || f.key !== `${folder.prefix}${f.name}` || names.has(f.name)) continue;
    names.add(f.name);
    files.push(f);
  }
  return { files, listedKeys };
}
