// Runs fauxqs (SQS + SNS) in its own process and prints {"port": N} as one JSON line once it
// listens. Started by scripts/local-stack/fauxqs.ts; needs Node >= 22.5 (node:sqlite).
// It stops on SIGTERM/SIGINT, and when its parent goes away (stdin closes), so it outlives nothing.
import process from 'node:process';
import { startFauxqs } from 'fauxqs';

const server = await startFauxqs({ port: 0, logger: false });
process.stdout.write(JSON.stringify({ port: server.port }) + '\n');

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.on('error', () => void stop());
process.stdin.resume();
