#!/usr/bin/env -S node --max-semi-space-size=8
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, ValidationError } from '../errors.js';
import { limitHeapGrowth } from '../heap-growth.js';
import { printable } from './sanitize.js';
import { registerAuth } from './commands/auth.js';
import { registerBackfill } from './commands/backfill.js';
import { registerConnector } from './commands/connector.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerOperator } from './commands/operator.js';
import { registerOps } from './commands/ops.js';
import { registerRun } from './commands/run.js';
import { registerWebhooks } from './commands/webhooks.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';
import { registerMigrateLedger } from './commands/migrate-ledger.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('avito-sync')
    .description('Keeps Avito Messenger and a CRM in step, both ways.')
    // -v is the version (what most tools do); debug output is the long --verbose only.
    .version(pkg.version, '-v, --version', 'print the version')
    .option('-c, --config <file>', 'config file (JSON or YAML) for several accounts and mapping rules')
    .option('--db <file>', 'ledger file (overrides AVITO_SYNC_DB)')
    .option('--log-level <level>', 'log level (overrides LOG_LEVEL)')
    .option('--account <id>', 'the account a single-account command works on (default: the first)')
    .option('--verbose', 'debug logs, and stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
  registerRun(program);
  registerSync(program);
  registerBackfill(program);
  registerStatus(program);
  registerDoctor(program);
  registerWebhooks(program);
  registerOps(program);
  registerDemo(program);
  registerOperator(program);
  registerConnector(program);
  registerAuth(program);
  registerMigrateLedger(program);
  return program;
}

/** Exit codes (design.md §3): 0 done; 1 a run error; 2 bad usage or bad configuration. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    // No command is bad usage (design.md §3): the help goes to stderr and the exit code says so.
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const verbose = argv.includes('--verbose');
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`avito-sync: ${printable(msg)}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof ConfigError || err instanceof ValidationError ? 2 : 1;
  }
}

/**
 * Sets the exit code and lets the process end by itself; if a leftover handle (a timer, a socket
 * of a failed start) would keep it alive, it ends anyway after a short grace, so systemd and
 * Docker always learn the outcome.
 */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}

// Every command, the daemon first: a heap sized near what is live (issue 13 item 2).
limitHeapGrowth();
main(process.argv).then(finish, (err: unknown) => {
  process.stderr.write(`avito-sync: ${String(err)}\n`);
  finish(1);
});
