import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { forgetConnectorGrant } from '../../ledger/connector-state.js';
import { forgetTokens } from '../../ledger/tokens.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';

/**
 * `avito-sync auth reset [--connector NAME]`: forgets the stored OAuth grant (Avito's tokens, or a
 * connector's), so the next start uses the configured authorization code. For when a grant is
 * dead and the operator has authorized again.
 */
export function registerAuth(program: Command): void {
  const auth = program.command('auth').description('stored OAuth grants');
  auth
    .command('reset')
    .description("forget the stored tokens (Avito's, or a connector's with --connector) so the configured authorization code is used at the next start")
    .option('--connector <name>', "reset this connector's grant instead of Avito's")
    .action(async (opts: { connector?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: false, readOnly: true }, async (rt) => {
        const known = rt.config.connectorDefinitions;
        if (opts.connector && !known.some((c) => c.id === opts.connector)) {
          throw new ConfigError(`No connector "${opts.connector}" (--connector); known: ${known.map((c) => c.id).join(', ')}.`, '--connector');
        }
        const accounts = rt.config.accounts.map((a) => a.id).filter((id) => !g.account || id === g.account);
        if (accounts.length === 0) throw new ConfigError(`No account "${g.account}" in the configuration (--account).`, '--account');
        for (const account of accounts) {
          if (opts.connector) {
            const forgot = await forgetConnectorGrant(rt.ledger.db, account, opts.connector);
            out(`${account}: ${opts.connector} grant ${forgot ? 'forgotten' : 'was not stored'}; the next start uses its configured authorization code.`);
          } else {
            const forgot = await forgetTokens(rt.ledger.db, account, 'avito');
            out(`${account}: Avito tokens ${forgot ? 'forgotten' : 'were not stored'}; the next start uses AVITO_AUTH_CODE (or the client credentials).`);
          }
        }
      });
    });
}
