import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatSha256Sums, SHA256SUMS_NAME } from '../store/sha256sums.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { Logger } from '../log.js';
import { hashStream } from '../verify/hash-object.js';
import type { TargetWriter } from './types.js';
import { VerifyingStream } from './verifying-stream.js';

/**
 * A directory target. Each file is written to a temporary name in the same directory
 * (`.ges-restore-<random>.partial`, created exclusively, so nothing is followed or
 * overwritten), through the verifying stream, fsync'ed, and renamed to its final name only
 * when the stream ended cleanly (length and SHA-256 matched); on any failure the temporary
 * file is removed. The directory may hold only the backup's files and SHA256SUMS (docs/contract.md);
 * temporary files an interrupted restore left behind are removed first.
 */
const TEMP = /^\.ges-restore-[0-9a-f]{24}\.partial$/;

function tempName(): string {
  return `.ges-restore-${randomBytes(12).toString('hex')}.partial`;
}

function fsError(action: string, path: string, err: unknown): ArchiverError {
  if (err instanceof ArchiverError) return err;
  const code = (err as { code?: string }).code ?? 'Error';
  return new ArchiverError(ErrorCodes.Internal, `Could not ${action} ${path}: ${code}`, { cause: err, details: { path, fsCode: code } });
}

/** Writes `content` to `dir/name` through a temporary file, fsync and rename: the name holds the old or the new content, never half. */
async function writeWhole(dir: string, name: string, content: string): Promise<void> {
  const temp = join(dir, tempName());
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
    await handle.close();
    await rename(temp, join(dir, name));
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

/** fsync of the directory itself, so the renames survive a crash. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function createDirTarget(dir: string, logger: Logger): TargetWriter {
  return {
    label: dir,

    async prepare(files) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        throw new ArchiverError(ErrorCodes.ArgsInvalid, `Cannot create the restore directory ${dir}: ${(err as { code?: string }).code ?? String(err)}`, { cause: err });
      }
      const allowed = new Set([...files.map((f) => f.name), SHA256SUMS_NAME]);
      const foreign: string[] = [];
      let entries: string[];
      try {
        entries = await readdir(dir);
      } catch (err) {
        throw new ArchiverError(ErrorCodes.ArgsInvalid, `Cannot read the restore directory ${dir}: ${(err as { code?: string }).code ?? String(err)}`, { cause: err });
      }
      for (const entry of entries) {
        if (TEMP.test(entry)) {
          logger.info({ file: entry }, 'removing a temporary file an interrupted restore left behind');
          await rm(join(dir, entry), { force: true });
        } else if (!allowed.has(entry)) {
          foreign.push(entry);
        }
      }
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).map((n) => JSON.stringify(n)).join(', ');
        throw new ArchiverError(ErrorCodes.ArgsInvalid,
          `The restore directory ${dir} holds ${foreign.length} entr${foreign.length === 1 ? 'y' : 'ies'} that ${foreign.length === 1 ? 'is' : 'are'} not a file of this backup (${shown}${foreign.length > 5 ? ', …' : ''}): `
          + 'restore into an empty or new directory (it may hold only the backup\'s files and SHA256SUMS)');
      }
    },

    async existing(file) {
      const path = join(dir, file.name);
      let stat;
      try {
        stat = await lstat(path);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return { state: 'absent' };
        throw fsError('inspect', path, err);
      }
      if (!stat.isFile()) return { state: 'differs', why: 'it is not a regular file' };
      if (stat.size !== file.bytes) return { state: 'differs', why: `it has ${stat.size} bytes, the archive ${file.bytes}` };
      const actual = await hashStream(createReadStream(path)).catch((err: unknown) => {
        throw fsError('read', path, err);
      });
      return actual.sha256 === file.sha256 ? { state: 'match' } : { state: 'differs', why: `its SHA-256 is ${actual.sha256}, the archive's ${file.sha256}` };
    },

    async write(file, body, onBytes, signal) {
      const temp = join(dir, tempName());
      const final = join(dir, file.name);
      const handle = await open(temp, 'wx', 0o644).catch((err: unknown) => {
        throw fsError('create', temp, err);
      });
      try {
        // flush: fsync before the stream closes the handle, so the rename never publishes data not yet on disk.
        const out = handle.createWriteStream({ flush: true });
        await pipeline(Readable.from(body), new VerifyingStream(file, onBytes), out, ...(signal ? [{ signal }] : []));
        await rename(temp, final);
      } catch (err) {
        await handle.close().catch(() => undefined);
        await rm(temp, { force: true });
        if (err instanceof ArchiverError || isAbortError(err)) throw err;
        throw fsError('write', final, err);
      }
    },

    async finish(files) {
      await writeWhole(dir, SHA256SUMS_NAME, formatSha256Sums(files)).catch((err: unknown) => {
        throw fsError('write', join(dir, SHA256SUMS_NAME), err);
      });
      await syncDir(dir).catch((err: unknown) => {
        throw fsError('sync', dir, err);
      });
      return join(dir, SHA256SUMS_NAME);
    },
  };
}
