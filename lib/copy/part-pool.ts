import type { FileHasher } from './hasher.js';
import { giveBlock, takeBlock } from './part-memory.js';

/**
 * The parts of one file between the sockets and S3, and the memory they may take.
 *
 * MEMORY BOUND: a part takes one of `capacity` buffer slots before its first byte is read and
 * gives it back only once it is both stored in S3 and hashed, so at most `capacity` part
 * buffers exist at once (the copier starts it at its bound for one stream and grows it as
 * streams are added, never past `limit`: see CopierDeps.partBufferBudgetBytes). Slots are
 * handed out in the order they are asked for and a part is opened only after its slot, in part
 * order, so the lowest unfinished part always holds one: the pool can fill up with later parts
 * waiting for it, but never deadlock. Several streams may fill one part (each its own segment):
 * only the stream that opens a part takes its slot.
 *
 * ORDER: the whole-file SHA-256 is fed strictly in part order, and only with parts S3 has
 * stored. So the hash state always describes the contiguous stored prefix `1 .. frontier-1`,
 * and a checkpoint can be taken at any moment (a deadline, a handover) without waiting for or
 * rewinding anything. Parts that arrive ahead of the frontier wait in their slots; that wait is
 * the reorder window, bounded by the same capacity.
 *
 * BUFFERS are blocks of the part size, recycled: a released part's block is handed to the next
 * part (a shorter last part gets a view of one) instead of a fresh allocation, and when the copy
 * is over its blocks go to the next copy (lib/copy/part-memory.ts). Fresh multi-MiB buffers cost
 * the kernel's page faults on first touch and the garbage collector's time (measured: ~25 % of
 * the copy's CPU on a 1 GiB file); recycled ones cost neither. A free block belongs to a
 * released slot, so blocks held plus blocks free never exceed `capacity`. They live over a
 * SharedArrayBuffer, so the Content-MD5 worker reads them without a copy
 * (lib/copy/md5-worker.ts).
 */
export class PartPool {
  private held = 0;
  private readonly waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** Filled (received and hash-ready) part buffers not hashed yet, by part number. */
  private readonly filled = new Map<number, Buffer>();
  private readonly stored = new Set<number>();
  private readonly free: Buffer[] = [];
  private readonly kept = new Set<number>();
  private next: number;
  private bytes: number;

  private readonly limit: number;
  private readonly blockSize: number;
  private readonly allocate: (size: number) => Buffer;
  private readonly giveBack: (block: Buffer) => void;
  /** Blocks of single-PUT bodies: hashed, kept until the PUT is done (dispose). */
  private readonly keptBlocks: Buffer[] = [];

  /**
   * `frontier`: the first part not in the hash yet (1, or the part after a checkpoint's offset).
   * `blockSize`: the part size; every buffer is a block of it (a shorter last part is a view of
   * one). `limit`: the most slots `grow` may reach (default `cap`). Blocks come from, and go back
   * to, the process's part memory (part-memory.ts), unless `allocate` makes them (tests).
   */
  constructor(private cap: number, private readonly hasher: FileHasher, frontier: number, hashedBytes: number,
    opts: { blockSize: number; limit?: number; allocate?: ((size: number) => Buffer) | undefined }) {
    this.next = frontier;
    this.bytes = hashedBytes;
    this.limit = Math.max(cap, opts.limit ?? cap);
    this.blockSize = opts.blockSize;
    this.allocate = opts.allocate ?? takeBlock;
    this.giveBack = opts.allocate === undefined ? giveBlock : () => undefined;
  }

  /**
   * Takes up to `count` blocks at once (never more than the free slots), ready for the first
   * parts: a new block's memory is written ahead by the MD5 worker while part 1 downloads
   * (md5-worker.ts, prefault), instead of page by page as each part is filled.
   */
  reserve(count: number): void {
    const room = this.cap - this.held - this.free.length;
    for (let i = 0; i < Math.min(count, room); i++) this.free.push(this.allocate(this.blockSize));
  }

  /**
   * The copy is over and nothing reads its buffers any more (every part stored, or the single
   * PUT done): its blocks go back to the process for the next copy.
   */
  dispose(): void {
    for (const block of this.free.splice(0)) this.giveBack(block);
    for (const block of this.keptBlocks.splice(0)) this.giveBack(block);
  }

  /** The first part not yet stored and hashed; parts before it are in S3 and in the hash. */
  get frontier(): number {
    return this.next;
  }

  /** Bytes fed to the hash: the file offset the frontier stands at. */
  get hashedBytes(): number {
    return this.bytes;
  }

  /** One more slot (a stream was added), unless the pool is at its limit. */
  grow(): void {
    if (this.cap >= this.limit) return;
    this.cap++;
    this.wake();
  }

  /** Waits for a free buffer slot (first come, first served); rejects when `signal` aborts. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(reasonOf(signal));
    if (this.held < this.cap && this.waiters.length === 0) {
      this.held++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(reasonOf(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** A buffer for a part of `size` bytes (at most the block size): a recycled block, or a view of one. */
  buffer(size: number): Buffer {
    const block = this.free.pop() ?? this.allocate(this.blockSize);
    return size === block.length ? block : block.subarray(0, size);
  }

  /** The whole block a part's buffer is (or is a view of). */
  private blockOf(buf: Buffer): Buffer {
    return buf.length === this.blockSize ? buf : Buffer.from(buf.buffer, buf.byteOffset, this.blockSize);
  }

  /** Gives a slot back unused (a worker that found no part left to take). */
  release(): void {
    this.held--;
    this.wake();
  }

  /** Part `n` is fully received. */
  markFilled(n: number, buf: Buffer): void {
    this.filled.set(n, buf);
    this.advance();
  }

  /**
   * Part `n` is stored (its UploadPart succeeded), or, with `keep`, it is the body of a single
   * PutObject still to be sent: hashed, but its buffer is not recycled.
   */
  markStored(n: number, keep = false): void {
    this.stored.add(n);
    if (keep) this.kept.add(n);
    this.advance();
  }

  private advance(): void {
    for (;;) {
      const buf = this.filled.get(this.next);
      if (buf === undefined || !this.stored.has(this.next)) return;
      this.hasher.update(buf);
      this.bytes += buf.length;
      this.filled.delete(this.next);
      this.stored.delete(this.next);
      if (this.kept.has(this.next)) this.keptBlocks.push(this.blockOf(buf));
      else this.free.push(this.blockOf(buf));
      this.next++;
      this.held--;
      this.wake();
    }
  }

  private wake(): void {
    while (this.held < this.cap && this.waiters.length > 0) {
      this.held++;
      this.waiters.shift()?.resolve();
    }
  }
}

function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(String(reason));
}
