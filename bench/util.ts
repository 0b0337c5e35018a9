import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { SEMI_SPACE_MB } from '../src/heap-growth.js';

export const DIST_BENCH = path.dirname(fileURLToPath(import.meta.url));

/** The V8 flags `avito-sync` starts with (its shebang and the Docker ENTRYPOINT): a benchmark of the product runs with them. */
export const PRODUCT_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MB}`];

/**
 * Starts a node script from dist/bench and resolves with its first stdout line, parsed.
 * `BENCH_NODE_FLAGS` (space-separated) go to the scripts it names in `BENCH_NODE_FLAGS_FOR`
 * (default: every script), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, which NODE_OPTIONS refuses.
 */
export function startJsonProcess<T>(script: string, args: string[], nodeFlags: readonly string[] = []): Promise<{ child: ChildProcess; first: T }> {
  const flagsFor = process.env.BENCH_NODE_FLAGS_FOR?.split(',');
  const flags = process.env.BENCH_NODE_FLAGS && (!flagsFor || flagsFor.includes(script)) ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, ...flags, path.join(DIST_BENCH, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => resolve({ child, first: JSON.parse(line) as T }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${script} exited ${code} before answering`)));
  });
}

/** Runs a node script to completion and parses its last stdout line. */
export async function runJsonProcess<T>(script: string, args: string[], nodeFlags: readonly string[] = []): Promise<T> {
  const { child, first } = await startJsonProcess<T>(script, args, nodeFlags);
  await new Promise((r) => child.once('exit', r));
  return first;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** POSTs one Avito webhook body to `avito-sync run` on loopback; 0 when the connection failed. */
export function postWebhook(agent: http.Agent, port: number, secret: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/webhooks/avito/${secret}`, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Waits until `check` holds, looking every `everyMs`; throws after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
