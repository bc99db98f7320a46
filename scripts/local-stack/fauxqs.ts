// fauxqs, the local SQS + SNS (one endpoint serves both), in a child process: jest's global
// setup cannot hold an in-process server for test files (they run in a VM sandbox), and a child
// dies with its parent (it watches its stdin), so nothing outlives the test run.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export interface FauxqsStack {
  /** http://127.0.0.1:PORT — SQS and SNS both. fauxqs accepts any credentials. */
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./fauxqs-server.js', import.meta.url));

export async function startFauxqs(opts: { readyTimeoutMs?: number } = {}): Promise<FauxqsStack> {
  // process.execPath: the Node that runs us (22 under npm scripts); fauxqs 2 needs node:sqlite.
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SERVER_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('fauxqs did not report its port in time')), opts.readyTimeoutMs ?? 15_000);
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        const { port: reported } = JSON.parse(line) as { port: unknown };
        if (typeof reported !== 'number') throw new Error(`unexpected first line from fauxqs: ${line}`);
        ok(reported);
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
    child.once('error', (err) => { clearTimeout(timer); fail(err); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`fauxqs exited before listening (${code ?? signal})`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  // Drain anything else it prints so a full pipe never blocks it.
  child.stdout.resume();

  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
}
