import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONNECTORS } from '../connectors/index.js';
import { defineConnector } from '../src/connector-sdk/index.js';
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
    const read = new Set(loadConfig({ env: {} }).envKeys.map((k) => k.env));
    for (const n of names) expect(read.has(n), n).toBe(true);
  });

  it('environment variables beat the file for the first account; flags beat both', () => {
    const file = path.join(ROOT, 'config/accounts.example.yaml');
    const cfg = loadConfig({ env: { AVITO_CLIENT_ID: 'from-env', PORT: '9000' }, flags: { config: file, port: '9100' } });
    expect(cfg.accounts[0]!.avito.clientId).toBe('from-env');
    expect(cfg.accounts[1]!.avito.clientId).toBe('...');
    expect(cfg.port).toBe(9100);
  });

  const mycrm = defineConnector({
    id: 'mycrm',
    version: '0.0.1',
    displayName: 'MyCRM',
    configSchema: z.object({ url: z.string().url('must be a URL'), note: z.string().optional() }),
    env: [
      { name: 'MYCRM_URL', path: ['url'], kind: 'string', describe: 'the MyCRM API base', enables: true },
      { name: 'MYCRM_NOTE', path: ['note'], kind: 'string', describe: 'a note label' },
    ],
    create: () => { throw new Error('not needed'); },
  });

  it("a connector's own env variables come from its definition; an `enables` one turns it on", () => {
    const known = [...CONNECTORS, mycrm];
    const on = loadConfig({ env: { MYCRM_URL: 'https://crm.example.com', MYCRM_NOTE: 'n' }, known });
    expect(on.enabledConnectors).toEqual(['mycrm']);
    expect(on.accounts[0]).toMatchObject({ mycrm: { url: 'https://crm.example.com', note: 'n' } });
    expect(loadConfig({ env: { MYCRM_NOTE: 'n' }, known }).enabledConnectors).toEqual([]);
    expect(loadConfig({ env: { AMOCRM_BASE_URL: 'https://x.amocrm.ru', AMOCRM_ACCESS_TOKEN: 't' }, known }).enabledConnectors).toEqual(['amocrm']);
    expect(loadConfig({ env: { AMOCRM_REPLY_PREFIX: '/a' }, known }).enabledConnectors).toEqual([]);
    // Without the definition, its variables are not read at all.
    expect(loadConfig({ env: { MYCRM_URL: 'https://crm.example.com' } }).accounts[0]).not.toHaveProperty('mycrm');
  });

  it("a bad value names the connector's variable and says what it is", async () => {
    const cfg = loadConfig({ env: { MYCRM_URL: 'not a url' }, known: [mycrm] });
    const ledger = await openLedger(':memory:');
    try {
      expect(() => createConnectors(cfg, ledger.db, memoryLogger().logger, [mycrm])).toThrow(/^Invalid MYCRM_URL: "not a url": must be a URL \(the MyCRM API base\)\.$/);
    } finally {
      await ledger.close();
    }
  });
});
