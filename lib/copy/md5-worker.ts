import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { contentMd5 } from './hasher.js';

/**
 * Content-MD5 of part bodies, computed on a worker thread so the event loop keeps the sockets
 * moving meanwhile. MD5 is the copy's most expensive step (~680 MiB/s here: ~12 ms of blocked
 * event loop per 8 MiB part, ~1.5 s of CPU per GiB, more than the file's SHA-256 with SHA-NI);
 * on the main thread every part's MD5 stalls every download and upload of the process.
 *
 * Zero-copy: the worker reads the part's own memory, which is why part buffers live over a
 * SharedArrayBuffer (lib/copy/part-memory.ts). A body that is not shared, or is small, is
 * hashed inline: copying it to the worker would cost more than hashing it. The same thread
 * readies new part buffers' memory (prefault).
 *
 * One worker per process, started with the copier (startMd5Worker) or else at the first large
 * part or new block, and kept while the process lives; it never keeps the process alive by
 * itself (unref'd whenever nothing is pending). If it dies, the pending parts fail with its error
 * (their uploads retry, and a new worker starts).
 */
/** Memory pages, and how much of a buffer the worker touches between two messages it answers. */
const PAGE = 4096;
const TOUCH_SLICE = 1024 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const touches = [];
let touching = false;
function touchSome() {
  const t = touches[0];
  if (t === undefined) {
    touching = false;
    return;
  }
  const stop = Math.max(0, t.next - ${TOUCH_SLICE});
  for (let i = t.next; i >= stop; i -= ${PAGE}) Atomics.add(t.view, i, 0);
  t.next = stop - 1;
  if (t.next < 0) touches.shift();
  setImmediate(touchSome);
}
parentPort.on('message', ({ id, buffer, offset, length, touch, collect }) => {
  // Part buffers this thread was sent stay in memory until its heap is collected, which its
  // few allocations never cause by themselves: the main thread asks (part-memory.ts).
  if (collect) {
    if (typeof gc === 'function') gc();
    return;
  }
  if (touch) {
    touches.push({ view: new Uint8Array(buffer, offset, length), next: length - 1 });
    if (!touching) {
      touching = true;
      setImmediate(touchSome);
    }
    return;
  }
  parentPort.postMessage({ id, md5: createHash('md5').update(new Uint8Array(buffer, offset, length)).digest('base64') });
});
`;

/** Below this a body is hashed inline (a message round trip costs about as much as 1 MiB of MD5). */
export const INLINE_BELOW = 1024 * 1024;

/** The worker takes a body only when it is large and shared (it reads the memory in place). */
function forWorker(body: Buffer): boolean {
  return body.length >= INLINE_BELOW && body.buffer instanceof SharedArrayBuffer;
}

interface Pending {
  resolve(md5: string): void;
  reject(err: unknown): void;
}

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();

function failAll(err: unknown): void {
  const waiting = [...pending.values()];
  pending.clear();
  for (const p of waiting) p.reject(err);
}

/**
 * `gc` exists in a context's global scope only with this V8 flag, and only in contexts (and
 * threads) made after it is set: this worker's, and part-memory.ts's one for the main thread.
 */
export function exposeGc(): void {
  setFlagsFromString('--expose-gc');
}

function start(): Worker {
  // A shared part buffer the worker was sent is freed only once its heap is collected, on
  // request (collectWorker). Measured: 100 buffers of 8 MiB, each hashed once, held 860 MiB;
  // collected, 68 MiB.
  exposeGc();
  const w = new Worker(WORKER_SOURCE, { eval: true, name: 'ges-archiver content-md5' });
  w.on('message', ({ id, md5 }: { id: number; md5: string }) => {
    const p = pending.get(id);
    pending.delete(id);
    if (pending.size === 0) w.unref();
    p?.resolve(md5);
  });
  w.on('error', (err) => {
    if (worker === w) worker = undefined;
    failAll(err);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = undefined;
    failAll(new Error(`the Content-MD5 worker thread exited (code ${code})`));
  });
  w.unref();
  return w;
}

/** Base64 MD5 of `body` for the Content-MD5 header; off the event loop when `body` is large and shared. */
export function contentMd5Off(body: Buffer): Promise<string> {
  if (!forWorker(body)) return Promise.resolve(contentMd5(body));
  worker ??= start();
  const w = worker;
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, buffer: body.buffer, offset: body.byteOffset, length: body.length });
  });
}

/**
 * Starts the worker now if it is not running. A worker thread takes ~150 ms of CPU to start
 * (its own Node.js environment); started when the first part arrives, that time is taken from
 * the download. createCopier calls this, so it overlaps the bucket check and the GES calls.
 */
export function startMd5Worker(): void {
  worker ??= start();
}

/** A part buffer whose memory the worker can read without a copy. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/**
 * Has the worker write every memory page of a large shared part buffer once, from its end
 * backwards, without changing a byte (an atomic add of 0), while the main thread fills it from
 * the start or has not reached it yet. On this kind of machine a page's first write costs
 * ~15 µs (the kernel, and the host behind it, back it with memory), ~3.7 ms per MiB, ~120 ms
 * per 32 MiB part: on the main thread that is time every stream and upload waits. Done here it
 * overlaps the first part's download, while the second core has little else to do. The worker
 * answers Content-MD5 requests between slices of 1 MiB, so hashing never waits for it.
 */
export function prefault(body: Buffer): void {
  if (!forWorker(body)) return;
  worker ??= start();
  worker.postMessage({ touch: true, buffer: body.buffer, offset: body.byteOffset, length: body.length });
}

/** Has the worker collect its heap, freeing the shared buffers it was sent and no longer holds. */
export function collectWorker(): void {
  worker?.postMessage({ collect: true });
}
