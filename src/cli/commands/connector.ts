import type { Command } from 'commander';
import { scaffoldConnector } from '../../scaffold/new-connector.js';
import { out } from '../context.js';

export function registerConnector(program: Command): void {
  const connector = program.command('connector').description('connector packages');
  connector
    .command('new <name>')
    .description('writes a connector package (manifest, client, a fake CRM, the contract kit test, README) whose tests pass as generated')
    .option('--dir <dir>', 'where to write it (default ./avito-sync-connector-<name>)')
    .option('--dependency <spec>', 'how it depends on avito-crm-sync (default: file: this installation)')
    .action((name: string, opts: { dir?: string; dependency?: string }) => {
      const { dir, files } = scaffoldConnector({ name, ...(opts.dir ? { dir: opts.dir } : {}), ...(opts.dependency ? { dependency: opts.dependency } : {}) });
      out(`Wrote ${files.length} files to ${dir}:`);
      for (const f of files) out(`  ${f}`);
      out('');
      out(`Next: cd ${dir} && npm install && npm test`);
      out(`Then: npm run build, and run avito-sync with AVITO_SYNC_CONNECTOR_MODULES=${dir}`);
    });
}
