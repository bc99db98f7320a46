// Runs the emulator as its own process, for the README demo and the benchmark:
//   npx tsx test/emulator/cli.ts --spec spec.json [--verbose]
// The spec is an EmulatorOptions object (without onRequest), plus one optional field for a
// process that cannot call the fault API: `throttleDownloads` (bytes per second), the cap
// `faults.throttleDownloads` puts on each download response (so each connection) from the start.
// Prints one JSON line {gesEndpoint, iamEndpoint, obsEndpoint, projectId} on stdout once it
// listens; with --verbose, one line per request on stderr (paths only: query strings carry
// signatures). Exits 0 on SIGTERM/SIGINT after closing its servers.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as z from 'zod';
import { startEmulator, type EmulatorOptions } from './index.js';

const cliSpec = z.looseObject({
  graphs: z.array(z.unknown(), { error: '"graphs" must be an array' }),
  throttleDownloads: z.number({ error: '"throttleDownloads" must be a number of bytes per second' })
    .positive('"throttleDownloads" must be a positive number of bytes per second').optional(),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { spec: { type: 'string' }, verbose: { type: 'boolean', default: false } },
    strict: true,
  });
  if (values.spec === undefined) throw new Error('usage: cli.ts --spec <EmulatorOptions JSON file> [--verbose]');
  const parsed = cliSpec.safeParse(JSON.parse(await readFile(values.spec, 'utf8')));
  if (!parsed.success) throw new Error(`${values.spec}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  const { throttleDownloads, ...spec } = parsed.data as EmulatorOptions & { throttleDownloads?: number };
  const options: EmulatorOptions = values.verbose
    ? {
        ...spec,
        onRequest: (e) => process.stderr.write(`${e.server} ${e.method} ${e.path} ${e.status} ${e.bodyBytes}B ${e.ms.toFixed(1)}ms\n`),
      }
    : spec;
  const emu = await startEmulator(options);
  if (throttleDownloads !== undefined) emu.faults.throttleDownloads(throttleDownloads);
  process.stdout.write(`${JSON.stringify({ gesEndpoint: emu.gesEndpoint, iamEndpoint: emu.iamEndpoint, obsEndpoint: emu.obsEndpoint, projectId: emu.projectId })}\n`);

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    emu.close().then(() => process.exit(0), (err: unknown) => {
      process.stderr.write(`ges-emulator: close failed: ${String(err)}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`ges-emulator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
