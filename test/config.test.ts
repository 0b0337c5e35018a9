import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONNECTORS } from '../connectors/index.js';
import { loadConfig } from '../src/config/load-config.js';
import { createConnectors } from '../src/connector/registry.js';
import { openLedger } from '../src/ledger/database.js';
import { memoryLogger } from '../src/log/logger.js';
import { ROOT } from './helpers.js';

describe('configuration', () => {
  it('the example multi-account file loads, and each account gets its connector', async () => {
    const cfg = loadConfig({ env: {}, flags: { config: path.join(ROOT, 'config/accounts.example.yaml') } });
    expect(cfg.accounts.map((a) => a.id)).toEqual(['shop-moscow', 'shop-spb']);
    expect(cfg.enabledConnectors).toEqual(['amocrm']);
    expect(cfg.accounts[0]!.avito.markRead).toBe('after-delivery');
    const ledger = await openLedger(':memory:');
    const active = createConnectors(cfg, ledger.db, memoryLogger().logger, CONNECTORS);
    expect(active.map((c) => `${c.accountId}/${c.definition.id}`)).toEqual(['shop-moscow/amocrm', 'shop-spb/amocrm']);
    await ledger.close();
  });

  it('every variable in example.env is one the program reads', () => {
    const names = [...readFileSync(path.join(ROOT, 'config/example.env'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(20);
    const env = Object.fromEntries(names.map((n) => [n, '']));
    expect(() => loadConfig({ env })).not.toThrow();
    const source = readFileSync(path.join(ROOT, 'src/config/env-keys.ts'), 'utf8');
    for (const n of names) expect(source, n).toContain(`'${n}'`);
  });

  it('environment variables beat the file for the first account; flags beat both', () => {
    const file = path.join(ROOT, 'config/accounts.example.yaml');
    const cfg = loadConfig({ env: { AVITO_CLIENT_ID: 'from-env', PORT: '9000' }, flags: { config: file, port: '9100' } });
    expect(cfg.accounts[0]!.avito.clientId).toBe('from-env');
    expect(cfg.accounts[1]!.avito.clientId).toBe('...');
    expect(cfg.port).toBe(9100);
  });
});
