import type { Command } from 'commander';
import { createLogger } from '../../log/logger.js';
import { runDemo } from '../../sandbox/demo.js';
import { out, type GlobalOptions } from '../context.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('a sandbox Avito and amoCRM on loopback with the daemon between them: see the whole loop in seconds')
    .option('--keep', 'keep the sandboxes and the daemon running afterwards (Ctrl-C stops)')
    .option('--console', 'keep running with the web console on; prints its address and password')
    .action(async (opts: { keep?: boolean; console?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const log = createLogger({ level: g.verbose ? 'debug' : (g.logLevel ?? 'warn') });
      const { stop, urls } = await runDemo({ log, say: out, keep: Boolean(opts.keep), console: Boolean(opts.console) });
      if (!opts.keep && !opts.console) return;
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
