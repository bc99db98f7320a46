// Runs one measured program as a whole process: wall clock from spawn to exit, and its peak
// RSS as GNU time reports it (`/usr/bin/time -f %M`, the largest resident set of the process
// and any child it waited for). Stdout is kept (it is small: a JSON report, curl's -w lines);
// stderr only to explain a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Timed {
  seconds: number;
  /** performance.now() when the process exited. */
  exitedAt: number;
  peakRssBytes: number;
  stdout: string;
  /** The last 16 KiB of stderr. */
  stderr: string;
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where GNU time writes its report; one file per run. */
  rssFile: string;
}

/** Signed links carry their signature in the query string: never print one. */
export function redactLinks(text: string): string {
  return text.replace(/(https?:\/\/[^\s?"']+)\?[^\s"']*/g, '$1?…');
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const running = new Set<ChildProcess>();

/** Ends every process this module started that is still running (on Ctrl-C). */
export function killRunning(): void {
  // Each runs in its own process group (GNU time and what it runs, curl, rclone, node): end the group.
  for (const child of running) {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }
}

function track(child: ChildProcess): void {
  running.add(child);
  child.once('close', () => running.delete(child));
}

export async function runTimed(command: string, args: readonly string[], opts: RunOptions): Promise<Timed> {
  let ended = 0;
  let stdout = '';
  let stderr = '';
  const started = performance.now();
  const child = spawn(GNU_TIME, ['-f', '%M', '-o', opts.rssFile, command, ...args], { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child);
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-16_384); });
  child.once('exit', () => { ended = performance.now(); });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, signal) => resolve(c ?? (signal === null ? 1 : 128)));
  });
  const what = `${command.split('/').pop() ?? command} ${args[0] ?? ''}`.trim();
  if (code !== 0) {
    throw new Error(`${what} failed (exit ${code}):\n${redactLinks(tail(stderr || stdout))}`);
  }
  // GNU time's report: "%M" on the last line (preceded by a status line when the command failed).
  const report = (await readFile(opts.rssFile, 'utf8')).trim().split('\n').pop() ?? '';
  const kib = Number(report);
  if (!Number.isFinite(kib) || kib <= 0) throw new Error(`${what}: GNU time gave no peak RSS (report: ${JSON.stringify(report)})`);
  return { seconds: (ended - started) / 1000, exitedAt: ended, peakRssBytes: kib * 1024, stdout, stderr };
}

/** Runs a helper command (set-up, checks, clean-up: never timed) and returns its stdout. */
export async function runQuiet(command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-16_384); });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`${command} ${args[0] ?? ''} failed (exit ${code}):\n${redactLinks(tail(stderr || stdout))}`);
  return stdout;
}

/** The full path of `name` on PATH, or undefined. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  return path.split(delimiter).filter((d) => d !== '').map((d) => join(d, name)).find((p) => existsSync(p));
}

/** The peers come from Debian packages (scripts/local-stack/install.sh); say how to get any that is missing. */
export function findPeers(): { curl: string; rclone: string } {
  const curl = onPath('curl');
  const rclone = onPath('rclone');
  const missing = [curl ? undefined : 'curl', rclone ? undefined : 'rclone', existsSync(GNU_TIME) ? undefined : `GNU time (${GNU_TIME})`]
    .filter((m): m is string => m !== undefined);
  if (!curl || !rclone || missing.length > 0) {
    throw new Error(`the benchmark's peers are missing: ${missing.join(', ')}. Install them (Debian packages curl, rclone, time) as root with: sudo bash scripts/local-stack/install.sh`);
  }
  return { curl, rclone };
}
