// The suite's PostgreSQL pass (the dialect matrix's second column): every test's ledger is a
// database of its own on the PostgreSQL that AVITO_SYNC_TEST_PG points at (created and dropped
// by the tests). Without AVITO_SYNC_TEST_PG it says how to get one and passes.
import { spawnSync } from 'node:child_process';

const url = process.env.AVITO_SYNC_TEST_PG?.trim();
if (!url) {
  console.log('PostgreSQL pass skipped: set AVITO_SYNC_TEST_PG=postgres://user:password@host:port/db (a server the tests may create databases on;');
  console.log('  `.ci/pg-cluster start /tmp/avito-pg` starts a throwaway one and prints its URL).');
  process.exit(0);
}
console.log('PostgreSQL pass: every ledger on its own database at the AVITO_SYNC_TEST_PG server');
const r = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, AVITO_SYNC_TEST_DIALECT: 'postgres' } });
process.exit(r.status ?? 1);
