import { spawn } from 'node:child_process';
import { CLI, ROOT } from './helpers.js';

/**
 * Runs the built CLI under a pseudo-terminal (util-linux `script`), as a person at a terminal
 * would: stdout and stderr are a TTY. `send` types into it (\x03 is Ctrl-C).
 */
export interface PtyRun {
  output: () => string;
  send: (text: string) => void;
  done: Promise<{ code: number | null; output: string }>;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function runInPty(args: string[], env: Record<string, string>): PtyRun {
  const cmd = `stty cols 120 rows 40 2>/dev/null; exec ${quote(process.execPath)} ${quote(CLI)} ${args.map(quote).join(' ')}`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', TERM: 'xterm-256color', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: out }));
  });
  return { output: () => out, send: (text) => child.stdin.write(text), done };
}
