import { existsSync, mkdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sql } from 'kysely';
import { openLedger } from '../src/ledger/database.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { ROOT, fakeEnv, runCli, tempDir } from './helpers.js';
import { namedLedger } from './dialects.js';

/**
 * The operator's first hour (issue 10): strict configuration, read-only commands that never
 * write, errors that name their subject and what to do. Each test drives the built CLI.
 */
let fake: SandboxAvito;
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  fake = new SandboxAvito();
  await fake.start();
  ({ dir, cleanup } = tempDir());
});
afterAll(async () => {
  await fake.stop();
  cleanup();
});

describe('first hour: configuration and read-only commands', { timeout: 120_000 }, () => {
  it('item 3: a config file with typos exits 2 and suggests every right key, connector sections included', async () => {
    const file = path.join(dir, 'typos.yaml');
    writeFileSync(file, [
      'pollIntervalSecond: 30',
      'conectors: [amocrm]',
      'accounts:',
      '  - id: main',
      '    avito:',
      '      clientId: a',
      '      clientSecret: b',
      '      chatType: [u2i]',
      '      markread: always',
      '    amocrm:',
      '      baseUrl: https://x.amocrm.ru',
      '      accessToken: t',
      '      pipelineID: 5',
      '  - id: second',
      '    amocmr:',
      '      baseUrl: https://y.amocrm.ru',
      '',
    ].join('\n'));
    const r = await runCli(['--config', file, 'doctor'], { AVITO_SYNC_DB: path.join(dir, 'typos.db') });
    expect(r.code).toBe(2);
    for (const hint of [
      'pollIntervalSecond (did you mean pollIntervalSeconds?)',
      'conectors (did you mean connectors?)',
      'accounts[0].avito.chatType (did you mean chatTypes?)',
      'accounts[0].avito.markread (did you mean markRead?)',
      'accounts[0].amocrm.pipelineID (did you mean pipelineId?)',
      'accounts[1].amocmr (did you mean amocrm?)',
    ]) expect(r.stderr).toContain(hint);
    expect(r.stderr).toMatch(/Unknown keys in .*typos\.yaml/);
    expect(existsSync(path.join(dir, 'typos.db'))).toBe(false);
  });

  it('item 3: a mistyped environment variable is warned about with the right name', async () => {
    const r = await runCli(['status', '--db', path.join(dir, 'none-env.db')], { AVITO_CLIENTID: 'x', AVITO_CHAT_TYPE: 'u2i' });
    expect(r.stderr).toContain('avito-sync: WARNING: AVITO_CLIENTID is not a variable avito-sync reads; did you mean AVITO_CLIENT_ID?');
    expect(r.stderr).toContain('did you mean AVITO_CHAT_TYPES?');
  });

  it('item 3: the shell\'s own variables are never taken for typos (HOME is two edits from HOST)', async () => {
    const r = await runCli(['status', '--db', path.join(dir, 'none-env2.db')], { HOME: '/home/seller', LANG: 'ru_RU.UTF-8', USER: 'seller', TERM: 'xterm', HOSR: '0.0.0.0' });
    expect(r.stderr).not.toMatch(/HOME|LANG|USER|TERM/);
    expect(r.stderr).toContain('avito-sync: WARNING: HOSR is not a variable avito-sync reads; did you mean HOST?');
  });

  it('item 5: status on a mistyped ledger path says "no ledger at …", exits 1 and creates nothing', async () => {
    const typo = path.join(dir, 'typo.db');
    const r = await runCli(['status', '--db', typo], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`avito-sync: There is no ledger at ${typo}: check --db or AVITO_SYNC_DB`);
    expect(existsSync(typo)).toBe(false);
    const dl = await runCli(['dead-letters', 'list', '--db', typo], {});
    expect(dl.code).toBe(1);
    expect(existsSync(typo)).toBe(false);
  });

  it('item 6: a ledger from a newer version exits 2 saying to upgrade; a garbage file is named', async () => {
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'newer.db') });
    expect((await runCli(['sync'], env)).code).toBe(0);
    const ledger = await openLedger(env.AVITO_SYNC_DB!);
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('003-future', ${new Date().toISOString()})`.execute(ledger.db);
    await ledger.close();
    const r = await runCli(['status'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/was written by a newer avito-sync \(migration 003-future\); upgrade avito-sync to use it\. Do not delete the ledger/);
    expect(r.stderr).not.toMatch(/corrupted/);

    const garbage = path.join(dir, 'garbage.db');
    writeFileSync(garbage, 'this is not a database at all, just some text that is long enough'.repeat(20));
    const g = await runCli(['status', '--db', garbage], {});
    expect(g.code).toBe(1);
    expect(g.stderr).toContain(`avito-sync: ${garbage} is not an avito-sync ledger (SQLite says: file is not a database)`);
  });

  it('item 9: doctor runs every check it can and reports each as a line', async () => {
    const r = await runCli(['doctor'], { AVITO_SYNC_DB: path.join(dir, 'doctor-none.db') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ok {3}configuration: 1 account\(s\)$/m);
    expect(r.stdout).toMatch(/^FAIL Avito credentials: AVITO_CLIENT_ID is not set/m);
    expect(r.stdout).toMatch(/^warn ledger: no ledger at .*doctor-none\.db yet$/m);
    expect(r.stdout).toMatch(/^warn CRM connectors: none enabled/m);
    expect(r.stdout).toMatch(/^(ok {2}|warn|FAIL) Avito webhook reachability|^ok {3}webhook|webhook/m);
    expect(existsSync(path.join(dir, 'doctor-none.db'))).toBe(false);
  });

  it('item 11: no arguments prints help with exit 2; -v prints the version; sync runs one pass without --once', async () => {
    const none = await runCli([], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage: avito-sync/);
    const version = await runCli(['-v'], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    const sync = await runCli(['sync'], fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'sync-default.db') }));
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/chats seen/);
  });

  it('item 11: a bad value is echoed back, not described in zod words', async () => {
    const r = await runCli(['status'], { PORT: 'eighty', AVITO_SYNC_DB: path.join(dir, 'x.db') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('avito-sync: Invalid PORT: "eighty" is not a number (the port the daemon listens on).');
    expect(r.stderr).not.toMatch(/expected|received|NaN/);
    const types = await runCli(['status'], { AVITO_CHAT_TYPES: 'u2i,chats', AVITO_SYNC_DB: path.join(dir, 'x.db') });
    expect(types.stderr).toContain('"chats" is not one of u2i, u2u, a2u');
  });

  it('item 11: interactive commands fail fast when the API is unreachable: one quick retry, not the daemon policy', async () => {
    let hits = 0;
    const down = createServer((_req, res) => {
      hits++;
      res.writeHead(503).end('down');
    });
    const port = await new Promise<number>((resolve) => down.listen(0, '127.0.0.1', () => resolve((down.address() as { port: number }).port)));
    try {
      const r = await runCli(['chats', 'list'], fakeEnv(fake, dir, { AVITO_API_URL: `http://127.0.0.1:${port}`, AVITO_SYNC_DB: namedLedger(dir, 'down.db') }));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Avito answered 503 to POST \/token/);
      expect(hits).toBe(2); // the daemon's read policy would make 5
    } finally {
      down.close();
    }
  });

  it('item 12: status and reconcile check connector settings; PUBLIC_URL must be absolute; reconcile without a CRM says it was not checked', async () => {
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'settings.db') });
    expect((await runCli(['sync'], env)).code).toBe(0);
    const badCrm = await runCli(['status'], { ...env, AVITO_SYNC_CONNECTORS: 'amocrm', AMOCRM_BASE_URL: 'not-a-url', AMOCRM_ACCESS_TOKEN: 't' });
    expect(badCrm.code).toBe(2);
    expect(badCrm.stderr).toMatch(/Invalid AMOCRM_BASE_URL: "not-a-url"/);
    const badRec = await runCli(['reconcile', '--report'], { ...env, AVITO_SYNC_CONNECTORS: 'amocrm', AMOCRM_BASE_URL: 'not-a-url', AMOCRM_ACCESS_TOKEN: 't' });
    expect(badRec.code).toBe(2);
    const pub = await runCli(['status'], { ...env, PUBLIC_URL: 'localhost:8080' });
    expect(pub.code).toBe(2);
    expect(pub.stderr).toContain('Invalid PUBLIC_URL: "localhost:8080": must be an absolute URL starting with http:// or https://');
    const rec = await runCli(['reconcile', '--report'], env);
    expect(rec.code, rec.stderr).toBe(0);
    expect(rec.stdout).toMatch(/the CRM was not checked: no connector is enabled/);
  });

  it('item 14: prepare does not fail without TypeScript (npm ci --omit=dev) and says how to build', () => {
    const { dir: bare, cleanup: done } = tempDir('avito-sync-omit-dev-');
    try {
      mkdirSync(path.join(bare, 'scripts'));
      cpSync(path.join(ROOT, 'scripts/prepare.mjs'), path.join(bare, 'scripts/prepare.mjs'));
      writeFileSync(path.join(bare, 'package.json'), '{"type":"module"}');
      const r = spawnSync(process.execPath, ['scripts/prepare.mjs'], { cwd: bare, encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/TypeScript is not installed \(--omit=dev\), so dist\/ was not built\. Install with `npm ci`.*then `npm prune --omit=dev`/);
    } finally {
      done();
    }
  });

  it('item 14: example.env has no comment after a value; the Docker health check fails unless ok; README has the recipe', () => {
    const env = readFileSync(path.join(ROOT, 'config/example.env'), 'utf8');
    for (const line of env.split('\n')) if (/^#?\s*[A-Z][A-Z0-9_]+=/.test(line)) expect(line, line).not.toMatch(/=\S*\s+#/);
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/HEALTHCHECK[\s\S]*h\.status==='ok'\?0:1/);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/AVITO_CLIENT_ID=… AVITO_CLIENT_SECRET=… AMOCRM_BASE_URL=… AMOCRM_ACCESS_TOKEN=… npx avito-sync run/);
    expect(readme).toMatch(/useradd --system/);
    expect(readFileSync(path.join(ROOT, 'config/avito-sync.service'), 'utf8')).toMatch(/useradd --system/);
  });

  it("the Docker image's run stage carries everything the package ships (package.json `files`), so `connector new` and the config examples work there too", () => {
    const docker = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const run = docker.slice(docker.lastIndexOf('\nFROM '));
    const files = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] }).files;
    for (const f of files.filter((x) => x !== 'README.md')) expect(run, f).toMatch(new RegExp(`^COPY (--from=build /app/)?${f}\\b`, 'm'));
  });

  it('item 13: the alert rules and the dashboard use only series the daemon exports', () => {
    const names = new Set<string>();
    for (const f of ['src/server/metrics.ts', 'src/server/crm-metrics.ts']) for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(/name: '(avito_sync_[a-z_]+)'/g)) names.add(m[1]!);
    const used = (text: string) => [...text.matchAll(/\b(avito_sync_[a-z_]+?)(?:_bucket)?\b/g)].map((m) => m[1]!);
    const rules = readFileSync(path.join(ROOT, 'config/prometheus-alerts.yaml'), 'utf8');
    const dash = readFileSync(path.join(ROOT, 'config/grafana-dashboard.json'), 'utf8');
    JSON.parse(dash);
    for (const n of [...used(rules), ...used(dash)]) expect(names, n).toContain(n);
    for (const n of ['avito_sync_crm_calls_total', 'avito_sync_crm_errors_total', 'avito_sync_crm_delivered_total', 'avito_sync_crm_dead_letters_total', 'avito_sync_replies_total', 'avito_sync_crm_token_expiry_timestamp_seconds']) expect(dash).toContain(n);
  });
});
