import type { ConnectorDefinition } from '../connector-sdk/contract.js';

/**
 * How to turn a CRM on, from the connectors' own declarations (src/ names no CRM): the variables
 * that enable each one, else its AVITO_SYNC_CONNECTORS value.
 */
export function howToEnableConnectors(known: readonly ConnectorDefinition[]): string {
  const ways = known.map((d) => {
    const vars = d.env.filter((v) => v.enables).map((v) => v.name);
    const creds = d.env.filter((v) => v.secret && !v.enables).map((v) => v.name).slice(0, 1);
    const list = [...vars, ...creds];
    return list.length ? `${d.displayName}: ${list.join(' and ')}` : `${d.displayName}: AVITO_SYNC_CONNECTORS=${d.id} with its section in the config file`;
  });
  return `To deliver to a CRM set ${ways.join('; or ')}. AVITO_SYNC_CONNECTORS=none says the ledger alone is intended.`;
}
