import type { Command } from 'commander';
import { requireAvitoCredentials } from '../../config/load-config.js';
import { createRuntime } from '../../runtime.js';
import { startDaemon } from '../../sync/daemon.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the daemon: webhook server, scheduled polling, delivery; SIGTERM drains and exits 0')
    .option('--port <n>', 'listen on this port (overrides PORT)')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await loadCliConfig({ ...g, ...(opts.port !== undefined ? { port: opts.port } : {}) });
      requireAvitoCredentials(config);
      const rt = await createRuntime(config, log);
      let daemon;
      try {
        daemon = await startDaemon(rt);
      } catch (err) {
        await rt.close();
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'signal received');
          void daemon.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
