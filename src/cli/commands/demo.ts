import type { Command } from 'commander';
import { knownConnectors } from '../../connector/load-modules.js';
import { createLogger } from '../../log/logger.js';
import { runDemo } from '../../sandbox/demo.js';
import { out, type GlobalOptions } from '../context.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description("a sandbox Avito and a connector's sandbox CRM on loopback with the daemon between them: see the whole loop in seconds")
    .option('--connector <id>', 'the connector whose sandbox CRM to use (default: the first with one)')
    .option('--keep', 'keep the sandboxes and the daemon running afterwards (Ctrl-C stops)')
    .action(async (opts: { keep?: boolean; connector?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const log = createLogger({ level: g.verbose ? 'debug' : (g.logLevel ?? 'warn') });
      const known = await knownConnectors({ flags: g });
      const { stop, urls } = await runDemo({ log, say: out, keep: Boolean(opts.keep), known, ...(opts.connector ? { connector: opts.connector } : {}) });
      if (!opts.keep) return;
      out('');
      for (const [k, v] of Object.entries(urls)) out(`  ${k}: ${v}`);
      out('Running; Ctrl-C stops.');
      await new Promise<void>((resolve) => {
        const done = () => void stop().then(resolve);
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
    });
}
