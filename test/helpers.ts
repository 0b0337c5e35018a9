import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type AppConfig } from '../src/config/load-config.js';
import { memoryLogger } from '../src/log/logger.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import type { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import type { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { markerOf } from '../connectors/amocrm/mappers.js';
import { isPostgresUrl, openLedger } from '../src/ledger/database.js';
import { LEASE_TTL_MS } from '../src/ledger/leases.js';
import { dropLedgerOf, ledgerLocation } from './dialects.js';
import { Dispatcher, type DispatcherOptions } from '../src/sync/dispatcher.js';
import type { ConnectorCapabilities } from '../src/connector-sdk/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

/** Retry backoff short enough for tests; the policy's shape is unchanged. */
export const FAST_RETRY = { minTimeoutMs: 5, maxTimeoutMs: 20, maxRetryAfterMs: 1500 };

export function tempDir(prefix = 'avito-sync-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return {
    dir,
    cleanup: () => {
      dropLedgerOf(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Environment for one account against the fake Avito. */
export function fakeEnv(fake: SandboxAvito, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AVITO_CLIENT_ID: fake.clientId,
    AVITO_CLIENT_SECRET: fake.clientSecret,
    AVITO_API_URL: fake.url,
    // DIR/ledger.db, or a PostgreSQL database of this test's own in the suite's PostgreSQL pass.
    AVITO_SYNC_DB: extra.AVITO_SYNC_DB ?? ledgerLocation(dir),
    AVITO_SYNC_DATA_DIR: dir,
    AVITO_SYNC_CONNECTORS: 'none',
    AVITO_REQUESTS_PER_SECOND: '1000',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export async function testRuntime(env: Record<string, string>, level = 'warn'): Promise<{ rt: Runtime; config: AppConfig; lines: string[] }> {
  const config = loadConfig({ env });
  const { logger, lines } = memoryLogger(level);
  const rt = await createRuntime(config, logger, { retry: FAST_RETRY });
  return { rt, config, lines };
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs`. No fixed sleeps. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI in a child process with exactly this environment (plus PATH). */
export function runCli(args: string[], env: Record<string, string>, opts: { cwd?: string; onSpawn?: (child: ChildProcess) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    opts.onSpawn?.(child);
  });
}

/** Environment for one account against the fake Avito and the fake amoCRM. */
export function fakeEnvWithAmo(fake: SandboxAvito, amo: SandboxAmo, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return fakeEnv(fake, dir, { AVITO_SYNC_CONNECTORS: 'amocrm', AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, ...extra });
}

/** Avito message ids of every note the fake amoCRM holds (from their markers), with repeats. */
export function deliveredIds(amo: SandboxAmo): string[] {
  return [...amo.notes.values()].map((n) => markerOf(String(n.params.text ?? ''))).filter((x): x is string => Boolean(x));
}

/**
 * After SIGKILLing a process that had the ledger at `location` open, before the restart that is to
 * pick up its work: on PostgreSQL several processes share the ledger, so the killed one's claims
 * are free once its registration runs out (no heartbeat for LEASE_TTL_MS), not on a pid check;
 * this waits for that, with a bound. On SQLite (one process per file) they are free at once.
 */
export async function afterSigkill(location: string, pid: number): Promise<void> {
  if (!isPostgresUrl(location)) return;
  const ledger = await openLedger(location);
  try {
    await waitFor(async () => !(await ledger.db.selectFrom('lease_owners').select('owner').where('pid', '=', pid).where('expires_at', '>=', Date.now()).executeTakeFirst()), LEASE_TTL_MS + 10_000, "the killed process's registration to run out");
  } finally {
    await ledger.close();
  }
}

/**
 * A dispatcher for the runtime's first connector whose wait for a new chat's details is over
 * (`stubGraceMs: 0`): it makes conversations with the placeholder names at once.
 */
export function impatientDispatcher(rt: Runtime, o: Partial<DispatcherOptions> = {}, caps: Partial<ConnectorCapabilities> = {}): Dispatcher {
  const unit = rt.connectors[0]!;
  return new Dispatcher({
    ledger: rt.ledger, log: rt.log, accountId: 'default', connectorId: unit.definition.id, connector: unit.instance,
    capabilities: { ...unit.definition.capabilities, ...unit.instance.limits, ...caps }, stubGraceMs: 0, ...o,
  });
}
