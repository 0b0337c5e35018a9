import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TEST_PG } from './dialects.js';
import { runCli } from './helpers.js';

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** `status` on a PostgreSQL ledger that cannot be opened: exit 2, one sentence naming AVITO_SYNC_DB, the password never shown. */
async function statusOn(url: string): Promise<{ code: number | null; text: string }> {
  const r = await runCli(['status'], { AVITO_SYNC_DB: url });
  return { code: r.code, text: r.stdout + r.stderr };
}

describe('a PostgreSQL ledger that cannot be opened is explained', () => {
  it('cannot connect: exit 2 naming AVITO_SYNC_DB, the host and port to check, no password', async () => {
    const port = await closedPort();
    const r = await statusOn(`postgres://seller:hunter2-secret@127.0.0.1:${port}/ledger`);
    expect(r.code).toBe(2);
    expect(r.text).toContain('AVITO_SYNC_DB: cannot connect to the PostgreSQL server; check the host and port');
    expect(r.text).toContain(`postgres://seller@127.0.0.1:${port}/ledger`);
    expect(r.text).not.toContain('hunter2-secret');
  });

  it.skipIf(!TEST_PG)('a wrong password: exit 2 naming AVITO_SYNC_DB and the credentials, the password never printed', async () => {
    const url = new URL(TEST_PG!);
    url.password = 'not-the-password-42';
    const r = await statusOn(url.toString());
    expect(r.code).toBe(2);
    expect(r.text).toContain('AVITO_SYNC_DB: PostgreSQL refused the user name or password');
    expect(r.text).not.toContain('not-the-password-42');
  });

  it.skipIf(!TEST_PG)('a database that does not exist: exit 2 saying to create it, the password never printed', async () => {
    const url = new URL(TEST_PG!);
    url.pathname = '/no_such_ledger_db';
    const r = await statusOn(url.toString());
    expect(r.code).toBe(2);
    expect(r.text).toContain('AVITO_SYNC_DB: the database in the URL does not exist on that PostgreSQL server; create it (createdb)');
    expect(r.text).not.toContain(new URL(TEST_PG!).password);
  });
});
