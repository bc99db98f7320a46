#!/usr/bin/env node
// Entry point of `npx ges-archiver`: runs the TypeScript CLI through tsx, so `npm ci` is the
// only setup step (no separate build).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
const code = await main({ argv: process.argv.slice(2), env: process.env, stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
