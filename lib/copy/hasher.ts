import { createHash, type Hash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import { ArchiverError, ErrorCodes } from '../errors.js';

/**
 * SHA-256 of a whole file, fed part by part in order. Two implementations, because no single
 * one is both fast and serialisable (measured on this project's 2-core dev box, Node 22, 1 GiB):
 *   node:crypto (OpenSSL, SHA-NI): ~1,340-1,520 MiB/s, but its midstate cannot be exported;
 *   hash-wasm:                       ~250-325 MiB/s, with save()/load() of the midstate.
 * So a copy that may hand over to another invocation (`handoverAt`) or continues one
 * (`checkpoint`) uses hash-wasm; every other copy uses node:crypto. Resuming within one
 * invocation needs no midstate: parts are hashed only once fully received, so the hash always
 * stands at a part boundary.
 */
export interface FileHasher {
  readonly kind: 'node' | 'wasm';
  update(data: Uint8Array): void;
  digestHex(): string;
  /** Base64 midstate; throws for the node:crypto hasher. */
  save(): string;
}

class NodeHasher implements FileHasher {
  readonly kind = 'node';
  private readonly hash: Hash = createHash('sha256');
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digestHex(): string {
    return this.hash.digest('hex');
  }
  save(): string {
    throw new ArchiverError(ErrorCodes.Internal, 'This copy was started without handoverAt; its hash state cannot be saved');
  }
}

class WasmHasher implements FileHasher {
  readonly kind = 'wasm';
  constructor(private readonly hash: IHasher) {}
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digestHex(): string {
    return this.hash.digest('hex');
  }
  save(): string {
    return Buffer.from(this.hash.save()).toString('base64');
  }
}

/**
 * Base64 MD5 of `data`, for the Content-MD5 header: the store (AWS S3 and Swift s3api alike)
 * recomputes it over the bytes it received and refuses a mismatch with 400 BadDigest.
 */
export function contentMd5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/**
 * Chooses at its first update, when the first part is in and the copy's pace is known:
 * hash-wasm when `wantsMidstate()` (the copy will take long enough that an interruption should
 * not lose it), node:crypto otherwise. Before that it can be saved (nothing hashed yet).
 */
class DeferredHasher implements FileHasher {
  private chosen: FileHasher | undefined;
  constructor(private readonly wasm: IHasher, private readonly wantsMidstate: () => boolean) {}
  get kind(): 'node' | 'wasm' {
    return this.chosen?.kind ?? 'wasm';
  }
  update(data: Uint8Array): void {
    this.chosen ??= this.wantsMidstate() ? new WasmHasher(this.wasm) : new NodeHasher();
    this.chosen.update(data);
  }
  digestHex(): string {
    return (this.chosen ??= new NodeHasher()).digestHex();
  }
  save(): string {
    return (this.chosen ??= new WasmHasher(this.wasm)).save();
  }
}

let compiled: Promise<unknown> | undefined;

/**
 * Starts compiling hash-wasm's SHA-256 in the background, once per process, so the first copy
 * does not wait for it: compiling takes 30-100 ms here (most of a small file's copy), while
 * later instances take well under a millisecond. A failure is not reported here; the next
 * createSHA256() meets it again and throws.
 */
export function warmUpSerialisableHash(): void {
  compiled ??= createSHA256().catch(() => undefined);
}

async function createSerialisableSha256(): Promise<IHasher> {
  warmUpSerialisableHash();
  await compiled;
  const hash = await createSHA256();
  hash.init();
  return hash;
}

/** A hasher that becomes serialisable only if `wantsMidstate()` says so at its first update. */
export async function createDeferredHasher(wantsMidstate: () => boolean): Promise<FileHasher> {
  const hash = await createSerialisableSha256();
  return new DeferredHasher(hash, wantsMidstate);
}

export async function createFileHasher(serialisable: boolean): Promise<FileHasher> {
  if (!serialisable) return new NodeHasher();
  return new WasmHasher(await createSerialisableSha256());
}

/**
 * Restores a midstate made by `save()`. hash-wasm refuses a state from an incompatible build
 * (after a deployment that changed it): that throws MESSAGE_INVALID, and the caller starts over.
 */
export async function restoreFileHasher(state: string): Promise<FileHasher> {
  const hash = await createSerialisableSha256();
  try {
    hash.load(Buffer.from(state, 'base64'));
  } catch (err) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, 'The checkpoint hash state cannot be restored', { cause: err });
  }
  return new WasmHasher(hash);
}
