// Whether bin/ges-archiver.js starts the command again, once, with huge pages for malloc'd
// memory. Plain JavaScript that old Node.js versions still parse (no ?. or ??), with no side
// effects: the bin imports it before it checks the Node.js version.
//
// Why: the copier's part buffers are large (4 of 32 MiB for a 1 GiB file, lib/copy/README.md)
// and new in every process. On Linux each 4 KiB page costs a fault on its first write, and
// under a hypervisor that fault is slow: on the 2-core Firecracker VM the bench runs on, 128 MiB
// of new part memory cost ~470 ms of CPU with 4 KiB pages and ~35 ms with 2 MiB pages. When
// transparent huge pages are in "madvise" mode (the kernel default of Debian, Ubuntu and many
// others), malloc'd memory gets them only if glibc asks, which glibc >= 2.35 does when
// GLIBC_TUNABLES holds glibc.malloc.hugetlb=1. glibc reads it only when a process starts, so
// the command replaces its own process (process.execve: same PID, same stdin/stdout/stderr)
// with one that has it set. That costs one Node.js start (~0.1 s), which is why only the
// commands that copy do it.
//
// Not done: when GLIBC_TUNABLES already names glibc.malloc.hugetlb (the way to turn this off is
// GLIBC_TUNABLES=glibc.malloc.hugetlb=0), when huge pages are "always" (no need) or "never" (no
// use), on glibc < 2.35 or musl (the tunable does not exist), without process.execve
// (Node.js < 22.15), and outside Linux.
import { readFileSync } from 'fs';

/** The glibc tunable that makes malloc ask for transparent huge pages (glibc >= 2.35). */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb';

/** The commands that copy backup files (cli/main.ts `run`, `archive`): the ones with part buffers. */
const COPYING_COMMANDS = new Set(['run', 'archive']);

/** Arguments after which those commands copy nothing. */
const NO_COPY_FLAGS = new Set(['-h', '--help', '--dry-run']);

/** Where Linux says which transparent huge page mode is on, e.g. "always [madvise] never". */
const THP_MODE_FILE = '/sys/kernel/mm/transparent_hugepage/enabled';

/** This host's transparent huge page modes, the one on in brackets; undefined where there is no such file. */
export function readThpModeText() {
  try {
    return readFileSync(THP_MODE_FILE, 'utf8');
  } catch {
    return undefined;
  }
}

/** The glibc this Node.js runs on, e.g. "2.36"; undefined on musl or when unknown. */
export function readGlibcVersion() {
  try {
    return process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return undefined;
  }
}

/**
 * hugePagesEnv on this host, for a process with the arguments `args` and the environment `env`;
 * undefined also where this Node.js has no process.execve to start again with.
 *
 * @param {readonly string[]} args
 * @param {Record<string, string | undefined>} env
 */
export function hostHugePagesEnv(args, env) {
  if (typeof process.execve !== 'function') return undefined;
  return hugePagesEnv({ platform: process.platform, args, env, thpModeText: readThpModeText, glibcVersion: readGlibcVersion });
}

/**
 * The environment to start the command again with, or undefined to go on in this process.
 * `thpModeText` and `glibcVersion` are called only when everything cheaper says yes; either
 * may return undefined (unknown), which means no.
 *
 * @param {{ platform: string, args: readonly string[], env: Record<string, string | undefined>,
 *   thpModeText: () => string | undefined, glibcVersion: () => string | undefined }} host
 * @returns {Record<string, string | undefined> | undefined}
 */
export function hugePagesEnv(host) {
  if (host.platform !== 'linux') return undefined;
  if (!host.args.some((arg) => COPYING_COMMANDS.has(arg)) || host.args.some((arg) => NO_COPY_FLAGS.has(arg))) return undefined;
  const tunables = host.env.GLIBC_TUNABLES;
  if (tunables !== undefined && tunables.includes(HUGE_PAGES_TUNABLE)) return undefined;
  const mode = /\[(\w+)\]/.exec(host.thpModeText() || '');
  if (!mode || mode[1] !== 'madvise') return undefined;
  const glibc = /^(\d+)\.(\d+)/.exec(host.glibcVersion() || '');
  if (!glibc || Number(glibc[1]) * 1000 + Number(glibc[2]) < 2035) return undefined;
  const setting = `${HUGE_PAGES_TUNABLE}=1`;
  return { ...host.env, GLIBC_TUNABLES: tunables ? `${tunables}:${setting}` : setting };
}
