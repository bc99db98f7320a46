// The CLI as its own process, from the sources (what bin/ges-archiver.js runs), for tests that
// need a real terminal: `node --import tsx test/support/cli-entry.ts <args>`.
import { main } from '../../cli/main.js';

process.exitCode = await main({ argv: process.argv.slice(2), env: process.env, stdout: process.stdout, stderr: process.stderr });
