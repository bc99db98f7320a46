import { resolve } from 'node:path';
import { ArchiverError, ErrorCodes } from '../errors.js';
import type { RestoreTarget } from './types.js';

/** S3 bucket names (and OBS's, which follow the same rules). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function argsError(message: string): ArchiverError {
  return new ArchiverError(ErrorCodes.ArgsInvalid, message);
}

/**
 * `--to`: `s3://bucket/prefix/` (a missing trailing slash is added: the prefix is a folder), or
 * anything else as a directory path (created when missing). An empty prefix, `.`/`..` segments
 * or empty segments are refused: GES imports from a folder, and keys must not be ambiguous.
 */
export function parseRestoreTarget(to: string, cwd: string = process.cwd()): RestoreTarget {
  const value = to.trim();
  if (value === '') throw argsError('--to must name a directory or s3://bucket/prefix/');
  if (!/^s3:\/\//i.test(value)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      throw argsError(`--to ${JSON.stringify(value)}: only a directory or s3://bucket/prefix/ can be restored to (for Huawei OBS use s3:// with RESTORE_S3_ENDPOINT)`);
    }
    return { kind: 'dir', dir: resolve(cwd, value) };
  }
  const rest = value.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (!BUCKET.test(bucket)) throw argsError(`--to ${JSON.stringify(value)}: ${JSON.stringify(bucket)} is not a valid bucket name`);
  if (prefix === '') throw argsError(`--to ${JSON.stringify(value)}: name a folder in the bucket (s3://${bucket}/some/folder/); GES imports a backup from a folder`);
  if (!prefix.endsWith('/')) prefix = `${prefix}/`;
  const segments = prefix.slice(0, -1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw argsError(`--to ${JSON.stringify(value)}: the folder must not contain empty, "." or ".." segments`);
  }
  return { kind: 's3', bucket, prefix };
}

export function targetLabel(target: RestoreTarget): string {
  return target.kind === 'dir' ? target.dir : `s3://${target.bucket}/${target.prefix}`;
}

/** GES's `import_path`: `bucket/prefix`, no scheme, no trailing slash (docs/contract.md, "Restore"). */
export function importPathOf(target: Extract<RestoreTarget, { kind: 's3' }>): string {
  return `${target.bucket}/${target.prefix.replace(/\/+$/, '')}`;
}
