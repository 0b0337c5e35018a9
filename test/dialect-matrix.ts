/**
 * The dialect matrix's exceptions: the test files that run in the SQLite column only, each with
 * the reason. Every other test file runs in both columns (`vitest.config.ts`'s `sqlite` and
 * `postgres` projects), so "every test that touches a ledger runs on both dialects" holds by
 * construction; `test/dialect-matrix.test.ts` checks that no file listed here opens the suite's
 * ledger, and that every file not listed does.
 *
 * Paths are relative to the repository, as vitest's `include` sees them.
 */
export const SQLITE_COLUMN_ONLY: ReadonlyArray<{ file: string; why: string }> = [
  { file: 'test/avito-fast-read.test.ts', why: 'pure: the fast reader of Avito messages against the zod schema (fast-check); no ledger' },
  { file: 'test/scheduler.test.ts', why: 'pure: the scheduler\'s phases and timers; no ledger' },
  { file: 'test/spacing-gate.test.ts', why: 'pure: the in-process request spacing gate; no ledger' },
  { file: 'test/layering.test.ts', why: 'static: reads source files and their imports; no ledger' },
  { file: 'test/heap-flags.test.ts', why: 'the V8 flags the CLI and the Docker image start with; runs `--version`, no ledger' },
  { file: 'test/dialect-matrix.test.ts', why: 'static: checks this list against the test files; no ledger' },
  {
    file: 'test/postgres-errors.test.ts',
    why: 'PostgreSQL servers that cannot be used (a closed port, a wrong password, a missing database): its own URLs, the same in either column, never the suite\'s ledger',
  },
  { file: 'test/config.test.ts', why: 'configuration parsing; an in-memory SQLite ledger is only handed to createConnectors, which neither reads nor writes it' },
  {
    file: 'test/connector-kit.test.ts',
    why: 'the SDK\'s connector kit (a toy CRM): its bench is the kit\'s own in-memory SQLite ledger, what connector authors get; the core paths it drives run on PostgreSQL in delivery, replies and the connector suites',
  },
  {
    file: 'connectors/amocrm/amocrm.test.ts',
    why: 'amoCRM against the connector kit\'s contract, on the kit\'s own in-memory SQLite bench (as above); amoCRM through the daemon runs on PostgreSQL in delivery, replies, chats and several-daemons',
  },
];

/**
 * Files that touch a ledger but are not in the PostgreSQL column yet, each with what is missing:
 * a known gap, listed so that it stays visible (README, "Run the tests"), to be emptied.
 */
export const POSTGRES_PENDING: ReadonlyArray<{ file: string; why: string }> = [];

/**
 * What marks a test file as opening the suite's ledger (directly or through a helper that puts it
 * at `ledgerLocation`): a file in the matrix must match, a file listed above must not.
 */
export const OPENS_SUITE_LEDGER = /\b(ledgerLocation|namedLedger|openTestLedger|createTestDatabase|fakeEnv|fakeEnvWithAmo|testRuntime|consoleWorld|SUITE_DIALECT)\b/;
