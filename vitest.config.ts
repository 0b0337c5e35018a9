import { configDefaults, defineConfig } from 'vitest/config';
import { POSTGRES_PENDING, SQLITE_COLUMN_ONLY } from './test/dialect-matrix.js';

/**
 * The dialect matrix (as Kysely's own tests do it): one vitest run, two projects sharing one pool.
 * - `sqlite`: every test file, each ledger a SQLite file in the test's folder.
 * - `postgres` (only when AVITO_SYNC_TEST_PG names a server the tests may create databases on):
 *   every test file that touches a ledger again, each ledger a database of its own there
 *   (`test/dialects.ts`). The files it leaves out never open the suite's ledger; they are listed
 *   with their reasons in `test/dialect-matrix.ts`, and `test/dialect-matrix.test.ts` checks that.
 *   That file also lists the ledger files not in this column yet (POSTGRES_PENDING), with why.
 * `vitest run --project sqlite` (or `postgres`) runs one column.
 *
 * Workers: most tests wait on child processes, sockets and timers rather than the CPU, so the pool
 * runs more files at once than there are cores (vitest's default is cores − 1: one file at a time
 * on a 2-core CI machine). AVITO_SYNC_TEST_WORKERS overrides it (default 4).
 */
const include = ['test/**/*.test.ts', 'connectors/**/*.test.ts'];
const pg = process.env.AVITO_SYNC_TEST_PG?.trim();
const workers = Number(process.env.AVITO_SYNC_TEST_WORKERS) || 4;

if (!pg) {
  console.log('PostgreSQL column skipped: set AVITO_SYNC_TEST_PG=postgres://user:password@host:port/db (a server the tests may create databases on;');
  console.log('  `.ci/pg-cluster start /tmp/avito-pg` starts a throwaway one and prints its URL).');
}

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: workers,
    projects: [
      { extends: true, test: { name: 'sqlite', include, env: { AVITO_SYNC_TEST_DIALECT: 'sqlite' } } },
      ...(pg
        ? [{ extends: true as const, test: { name: 'postgres', include, exclude: [...configDefaults.exclude, ...[...SQLITE_COLUMN_ONLY, ...POSTGRES_PENDING].map((f) => f.file)], env: { AVITO_SYNC_TEST_DIALECT: 'postgres' } } }]
        : []),
    ],
  },
});
