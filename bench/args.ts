// `npm run bench -- [--rounds N] [--case a|b|c]... [--quick]`: the command line, checked up
// front so a typo fails before minutes of setup.
import { parseArgs } from 'node:util';
import * as z from 'zod';
import { CASE_IDS, DEFAULT_CASE_IDS, type CaseId } from './cases.js';

export interface BenchArgs {
  rounds: number;
  cases: CaseId[];
  quick: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--rounds N] [--case a|b|c|bwlimit]... [--quick]
  --rounds N   rounds of every program on every case (default 3; 1 with --quick)
  --case X     run only case X (repeatable): a = 1 × 1 GiB, b = 1 × 256 MiB from a source capped
               at 8 MiB/s per connection, c = 100 × 8 MiB (these three by default); bwlimit =
               the archiver alone, 1 × 400 MiB with --bwlimit 20M, its rate against the limit
  --quick      smaller files and 1 round: a smoke check, not a measurement`;

const roundsSchema = z.coerce.number({ error: '--rounds must be a whole number' })
  .int('--rounds must be a whole number').min(1, '--rounds must be at least 1').max(50, '--rounds must be at most 50');
const caseSchema = z.enum(CASE_IDS, { error: `--case must be one of ${CASE_IDS.join(', ')}` });

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      rounds: { type: 'string' },
      case: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick ?? false;
  const rounds = values.rounds === undefined ? (quick ? 1 : 3) : parse(roundsSchema, values.rounds);
  const picked = (values.case ?? []).map((c) => parse(caseSchema, c.trim().toLowerCase()));
  // Keep the canonical order a, b, c, bwlimit whatever order they were named in.
  const cases = picked.length === 0 ? [...DEFAULT_CASE_IDS] : CASE_IDS.filter((id) => picked.includes(id));
  return { rounds, cases, quick, help: values.help ?? false };
}

function parse<T>(schema: z.ZodType<T>, value: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new Error(`${r.error.issues.map((i) => i.message).join('; ')} (got "${value}")\n${USAGE}`);
  return r.data;
}
