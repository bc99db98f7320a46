// Baseline 1: a plain download of the same links to /dev/null (undici, same file
// concurrency as the archiver). Prints {bytes, seconds} as one JSON line.
import pLimit from 'p-limit';
import { request } from 'undici';

const [gesEndpoint, projectId, token, graphId, backupId, concurrency] = process.argv.slice(2) as [string, string, string, string, string, string];

const res = await request(`${gesEndpoint}/v2/${projectId}/graphs/${graphId}/backup-files?backup_id=${backupId}`, {
  headers: { 'x-auth-token': token },
});
const body = (await res.body.json()) as { files: { download_link: string }[] };
const started = performance.now();
let bytes = 0;
const limit = pLimit(Number(concurrency));
await Promise.all(body.files.map((f) => limit(async () => {
  const dl = await request(f.download_link);
  if (dl.statusCode !== 200) throw new Error(`download status ${dl.statusCode}`);
  for await (const chunk of dl.body) bytes += (chunk as Buffer).length;
})));
process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - started) / 1000 })}\n`);
