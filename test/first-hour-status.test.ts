import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAccount } from '../src/ledger/accounts.js';
import { connectorStore } from '../src/ledger/connector-state.js';
import { openLedger } from '../src/ledger/database.js';
import { runCli, tempDir } from './helpers.js';
import { namedLedger } from './dialects.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());

describe('first hour: status tells the truth', { timeout: 120_000 }, () => {
  it('item 13: a connector error is shown until a delivery succeeds after it, then no more', async () => {
    const file = namedLedger(dir, 'stale.db');
    const ledger = await openLedger(file);
    await ensureAccount(ledger.db, 'default', '1');
    const t0 = Date.now() - 60_000;
    await connectorStore(ledger.db, 'default', 'amocrm').set('last_error', `${new Date(t0).toISOString()} amoCRM answered 503`);
    const row = { account_id: 'default', connector: 'amocrm', kind: 'message', chat_id: 'c1', created: 1, seq: 1, attempts: 1, next_attempt_at: 0, lease_until: null, lease_owner: null, last_error: null, remote_id: null };
    await ledger.db.insertInto('deliveries').values({ ...row, message_id: 'm1', status: 'delivered', updated_at: t0 - 1000 }).execute();
    await ledger.close();
    const before = await runCli(['status', '--db', file], {});
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/last error: .*amoCRM answered 503/);

    const again = await openLedger(file);
    await again.db.insertInto('deliveries').values({ ...row, message_id: 'm2', seq: 2, status: 'delivered', updated_at: t0 + 1000 }).execute();
    await again.close();
    const after = await runCli(['status', '--db', file], {});
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).not.toMatch(/last error/);
    expect(after.stdout).toMatch(/→ amoCRM: 2 delivered/);
  });
});
