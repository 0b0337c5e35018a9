import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPENS_SUITE_LEDGER, POSTGRES_PENDING, SQLITE_COLUMN_ONLY } from './dialect-matrix.js';
import { ROOT } from './helpers.js';

/** Every test file vitest's `include` finds (test/**, connectors/**), relative to the repository. */
function testFiles(): string[] {
  return ['test', 'connectors'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
      .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/')),
  );
}

describe('the dialect matrix: every test that touches a ledger runs on SQLite and on PostgreSQL', () => {
  const listed = new Map(SQLITE_COLUMN_ONLY.map((f) => [f.file, f.why]));

  it('each file left out of the PostgreSQL column exists, once, with a reason', () => {
    expect(listed.size).toBe(SQLITE_COLUMN_ONLY.length);
    for (const [file, why] of listed) {
      expect(existsSync(path.join(ROOT, file)), file).toBe(true);
      expect(why.length, file).toBeGreaterThan(10);
    }
  });

  it('no file left out opens the suite\'s ledger; every other file does (through test/dialects.ts or the helpers built on it)', () => {
    const leftOutButOpens: string[] = [];
    const inMatrixButNever: string[] = [];
    for (const file of testFiles()) {
      const opens = OPENS_SUITE_LEDGER.test(readFileSync(path.join(ROOT, file), 'utf8'));
      if (listed.has(file) && opens) leftOutButOpens.push(file);
      if (!listed.has(file) && !opens) inMatrixButNever.push(file);
    }
    expect(leftOutButOpens).toEqual([]);
    expect(inMatrixButNever).toEqual([]);
  });

  it('a file still pending for PostgreSQL is a ledger file, says why, and is not also in the list above', () => {
    for (const { file, why } of POSTGRES_PENDING) {
      expect(existsSync(path.join(ROOT, file)), file).toBe(true);
      expect(OPENS_SUITE_LEDGER.test(readFileSync(path.join(ROOT, file), 'utf8')), file).toBe(true);
      expect(listed.has(file), file).toBe(false);
      expect(why.length, file).toBeGreaterThan(10);
    }
  });
});
