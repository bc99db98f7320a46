// Runs the CLI in a pseudo-terminal (util-linux `script`), so stdout and stderr are a TTY: what
// a person at a terminal sees, progress bar and all. Output is both streams, as the terminal
// shows them, with the ANSI control sequences removed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'cli-entry.ts');

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

// CSI sequences (cursor moves, colours, erase), OSC, and the cursor show/hide pair.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007|\u001b[=>]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '').replace(/\r/g, '');
}

export interface TerminalResult {
  code: number;
  /** Everything the terminal showed, without control sequences. */
  screen: string;
}

export function runCliInTerminal(argv: string[], env: Record<string, string | undefined>): Promise<TerminalResult> {
  const command = `stty cols 120 rows 40; ${[process.execPath, '--import', 'tsx', ENTRY, ...argv].map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    // -q: no "Script started" lines; -e: the command's exit status; -c: the command; no typescript file.
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      env: { ...env, TERM: 'xterm-256color' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, screen: stripAnsi(out) }));
  });
}
