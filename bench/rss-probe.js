// Preloaded into a measured process (`node --import ./bench/rss-probe.js ...`): writes the
// process's peak resident set size (bytes) to BENCH_RSS_FILE when it exits.
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_RSS_FILE;
if (out) {
  process.on('exit', () => {
    writeFileSync(out, String(process.resourceUsage().maxRSS * 1024));
  });
}
