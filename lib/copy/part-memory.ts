import { runInNewContext } from 'node:vm';
import { collectWorker, exposeGc, prefault, sharedBuffer } from './md5-worker.js';

/**
 * The memory of part buffers, for the whole process: blocks of one part size each, kept when a
 * copy is done with them and handed to the next copy that needs that size, instead of made anew.
 *
 * Why: a part buffer lives over a SharedArrayBuffer (the MD5 worker reads it in place), and such
 * memory is freed only once every thread that saw it has collected it. Neither the main thread
 * (whose part buffers outlive its young generation) nor the worker collects soon enough by
 * itself: measured, one run of 40 files of 64 MiB reached 1.2-1.7 GB. Reused, the blocks of a
 * run are those its copies hold at once, which is the memory bound (README, "Memory bound"), plus
 * at most SPARE_MAX_BYTES kept between copies. A reused block also costs no page faults: on this
 * kind of machine the first write to a fresh page costs ~15 µs (~3.7 ms per MiB).
 *
 * Blocks let go (over the limit) are garbage that only a full collection of both threads frees;
 * after every COLLECT_AFTER_BYTES of them both collect once (about 20 ms), so they never pile up.
 */
export const SPARE_MAX_BYTES = 256 * 1024 * 1024;
const COLLECT_AFTER_BYTES = 256 * 1024 * 1024;

const spare = new Map<number, Buffer[]>();
let spareBytes = 0;
let dropped = 0;
let fullCollection: (() => void) | undefined | null;

/** A full collection of both threads' heaps, when V8 lets us have one (see the module comment). */
function collect(): void {
  collectWorker();
  if (fullCollection === undefined) {
    try {
      exposeGc();
      fullCollection = runInNewContext('gc') as () => void;
    } catch {
      fullCollection = null;
    }
  }
  fullCollection?.();
}

/** A block of `size` bytes: a kept one, else a new one whose pages the MD5 worker writes ahead. */
export function takeBlock(size: number): Buffer {
  const kept = spare.get(size)?.pop();
  if (kept !== undefined) {
    spareBytes -= size;
    return kept;
  }
  const block = sharedBuffer(size);
  prefault(block);
  return block;
}

/** Gives a block back once nothing reads or writes it any more (stored, hashed, or its PUT done). */
export function giveBlock(block: Buffer): void {
  if (spareBytes + block.length > SPARE_MAX_BYTES) {
    dropped += block.length;
    if (dropped >= COLLECT_AFTER_BYTES) {
      dropped = 0;
      setImmediate(collect);
    }
    return;
  }
  const list = spare.get(block.length) ?? [];
  list.push(block);
  spare.set(block.length, list);
  spareBytes += block.length;
}

/** Bytes kept between copies (tests). */
export function spareBlockBytes(): number {
  return spareBytes;
}
