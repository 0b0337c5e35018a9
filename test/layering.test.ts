import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/** Every .ts file under `dir`, relative to the repository. */
function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

/** The module specifiers a file imports or re-exports (static and dynamic). */
function imports(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]!);
}

describe('layering', () => {
  it('connectors reach into src/ only through the SDK entry (tests also through the kit)', () => {
    const bad: string[] = [];
    for (const file of tsFiles('connectors')) {
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
        if (!target.startsWith(`src${path.sep}`)) continue;
        const allowed = target === path.join('src', 'connector-sdk', 'index.js') || (file.endsWith('.test.ts') && target === path.join('src', 'connector-sdk', 'testing', 'index.js'));
        if (!allowed) bad.push(`${file} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('src/ names no CRM: grep -rniwE "amo|amocrm|amojo|kommo|bitrix|bitrix24" src/ prints nothing', () => {
    let printed = '';
    try {
      printed = execFileSync('grep', ['-rniwE', 'amo|amocrm|amojo|kommo|bitrix|bitrix24', 'src/'], { cwd: ROOT, encoding: 'utf8' });
    } catch (err) {
      const e = err as { status?: number; stdout?: string };
      if (e.status !== 1) throw err; // 1 = no match
      printed = e.stdout ?? '';
    }
    expect(printed).toBe('');
  });

  it('src/ reaches connectors/ only through the built-in list (src/connector/built-ins.ts)', () => {
    const bad: string[] = [];
    for (const file of tsFiles('src')) {
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
        if (target.startsWith(`connectors${path.sep}`) && !(file === path.join('src', 'connector', 'built-ins.ts') && target === path.join('connectors', 'index.js'))) bad.push(`${file} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  /**
   * Files outside src/ledger that still build their own queries, to be moved behind repository
   * functions. The list may only shrink: a file that no longer needs to be here fails the test too.
   */
  const QUERIES_NOT_YET_MOVED: string[] = [];

  it('nothing outside src/ledger builds a query or sees a driver (but the files listed as not yet moved)', () => {
    const query = /\.(selectFrom|insertInto|updateTable|deleteFrom)\(|\bsql`|from '(kysely|better-sqlite3|pg)'/;
    const offenders = tsFiles('src').filter((f) => !f.startsWith(path.join('src', 'ledger') + path.sep) && query.test(readFileSync(path.join(ROOT, f), 'utf8')));
    expect(offenders.filter((f) => !QUERIES_NOT_YET_MOVED.includes(f))).toEqual([]);
    expect(QUERIES_NOT_YET_MOVED.filter((f) => !offenders.includes(f))).toEqual([]);
  });

  it('the ledger does not import the connector contract, and runtime does not import sync', () => {
    const bad: string[] = [];
    for (const file of tsFiles('src/ledger')) for (const spec of imports(file)) if (spec.includes('connector-sdk') || spec.includes('/sync/')) bad.push(`${file} imports ${spec}`);
    for (const spec of imports('src/runtime.ts')) if (spec.startsWith('./sync/')) bad.push(`src/runtime.ts imports ${spec}`);
    expect(bad).toEqual([]);
  });
});
