import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, ROOT, runCli, tempDir } from './helpers.js';

const run = promisify(execFile);

/**
 * The package as a stranger sees it: the two entries by name, a connector package scaffolded
 * outside this repository (depending on it by path, importing only the two entries) that passes
 * the kit as generated and delivers with `sync --once`, loaded by AVITO_SYNC_CONNECTOR_MODULES.
 */

describe('the package entries', () => {
  it('avito-crm-sync/connector and avito-crm-sync/connector-kit resolve by name, built and typed', async () => {
    const script = `
      const sdk = await import('avito-crm-sync/connector');
      const kit = await import('avito-crm-sync/connector-kit');
      console.log(JSON.stringify({ sdk: Object.keys(sdk).sort(), kit: Object.keys(kit).sort() }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const surface = JSON.parse(stdout) as { sdk: string[]; kit: string[] };
    expect(surface.sdk).toEqual(expect.arrayContaining([
      'defineConnector', 'DEFAULT_CAPABILITIES', 'ConfigError', 'RemoteApiError', 'ValidationError', 'describeError',
      'READ_POLICY', 'WRITE_POLICY', 'withRetry', 'parseRetryAfter', 'networkCode', 'wasUndelivered', 'SpacingGate',
      'listenLoopback', 'closeServer', 'readBody', 'freePort', 'z', 'definitionProblem',
    ]));
    expect(surface.kit).toEqual(expect.arrayContaining(['connectorContract', 'runContract', 'runCase', 'CASES', 'ContractFailure', 'createTestBench', 'createTestContext', 'chat', 'message']));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string; default?: string } | string>; peerDependenciesMeta: Record<string, { optional: boolean }> };
    for (const entry of ['./connector', './connector-kit']) {
      const e = pkg.exports[entry] as { types: string; default: string };
      expect(existsSync(path.join(ROOT, e.types)), e.types).toBe(true);
      expect(existsSync(path.join(ROOT, e.default)), e.default).toBe(true);
    }
    expect(pkg.peerDependenciesMeta.vitest?.optional).toBe(true);
  });
});

describe('a connector package outside this repository', () => {
  let dir: string;
  let cleanup: () => void;
  let pkgDir: string;

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir('avito-sync-connector-'));
    pkgDir = path.join(dir, 'acme');
    const made = await runCli(['connector', 'new', 'acme-crm', '--dir', pkgDir], {});
    expect(made.code, made.stderr).toBe(0);
    // Installed offline: the file: dependency and the dev tools linked from this checkout.
    mkdirSync(path.join(pkgDir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(ROOT, path.join(pkgDir, 'node_modules', 'avito-crm-sync'), 'dir');
    for (const dep of ['vitest', 'typescript']) symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(pkgDir, 'node_modules', dep), 'dir');
    symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(pkgDir, 'node_modules', '@types', 'node'), 'dir');
  }, 60_000);
  afterAll(() => cleanup?.());

  it('the scaffold writes a package depending on this one by path, importing only the two entries', () => {
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { name: string; devDependencies: Record<string, string> };
    expect(pkg.name).toBe('avito-sync-connector-acme-crm');
    expect(pkg.devDependencies['avito-crm-sync']).toBe(`file:${ROOT}`);
    for (const f of ['src/index.ts', 'src/client.ts', 'src/connector.ts', 'test/fake-crm.ts', 'test/contract.test.ts', 'README.md', 'tsconfig.json', '.gitignore']) expect(existsSync(path.join(pkgDir, f)), f).toBe(true);
    for (const f of ['src/index.ts', 'src/client.ts', 'src/connector.ts', 'test/fake-crm.ts', 'test/contract.test.ts']) {
      const specs = [...readFileSync(path.join(pkgDir, f), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      expect(specs.filter((s) => !s.startsWith('.') && !s.startsWith('node:')).every((s) => s === 'avito-crm-sync/connector' || s === 'avito-crm-sync/connector-kit'), `${f}: ${specs.join(', ')}`).toBe(true);
    }
    expect(readFileSync(path.join(pkgDir, 'src/index.ts'), 'utf8')).toContain("name: 'ACME_CRM_BASE_URL'");
  });

  it('typechecks and builds against the typed entries, and its kit test passes as generated', async () => {
    await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: pkgDir });
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=verbose'], { cwd: pkgDir, env: { ...process.env, NO_COLOR: '1' } }).catch((err: { stdout: string; stderr: string }) => {
      throw new Error(`the generated package's tests failed:\n${err.stdout}\n${err.stderr}`);
    });
    expect(stdout).toMatch(/Tests\s+\d+ passed/);
    expect(stdout).not.toMatch(/failed/);
    expect(stdout).toMatch(/connector contract: acme-crm/);
  }, 120_000);

  it('loaded by AVITO_SYNC_CONNECTOR_MODULES, it delivers with sync --once against the sandbox Avito', async () => {
    const { FakeCrm } = (await import(pathToFileURL(path.join(pkgDir, 'dist/test/fake-crm.js')).href)) as typeof import('./fake-crm-shape.js');
    const crm = new FakeCrm();
    await crm.start();
    const avito = new SandboxAvito();
    await avito.start();
    try {
      const chats = avito.seed(2, 3);
      // No AVITO_SYNC_CONNECTORS: setting ACME_CRM_BASE_URL (declared `enables`) turns it on.
      const env = fakeEnv(avito, dir, { AVITO_SYNC_CONNECTORS: '', AVITO_SYNC_CONNECTOR_MODULES: pkgDir, ACME_CRM_BASE_URL: crm.url, ACME_CRM_TOKEN: crm.token });
      const r = await runCli(['sync', '--once'], env);
      expect(r.code, r.stderr).toBe(0);
      const delivered = crm.notes.flatMap((n) => (n.marker ? [n.marker] : []));
      expect(delivered.sort()).toEqual(chats.flatMap((c) => c.messages.map((m) => m.id)).sort());
      expect(crm.conversations.size).toBe(2);
      const status = await runCli(['status'], env);
      expect(status.stdout).toMatch(/→ acme-crm: 6 delivered/);
    } finally {
      await avito.stop();
      await crm.stop();
    }
  }, 60_000);

  it('a bad connector module stops the start with exit 2, naming the module and why', async () => {
    writeFileSync(path.join(dir, 'not-a-connector.mjs'), 'export default { id: "x" };\n');
    const env = { AVITO_SYNC_DB: path.join(dir, 'bad.db'), AVITO_SYNC_CONNECTORS: 'none' };
    const missing = await runCli(['status'], { ...env, AVITO_SYNC_CONNECTOR_MODULES: './no-such-module.js' }, { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/AVITO_SYNC_CONNECTOR_MODULES: connector module \.\/no-such-module\.js does not exist/);
    const wrong = await runCli(['status'], { ...env, AVITO_SYNC_CONNECTOR_MODULES: './not-a-connector.mjs' }, { cwd: dir });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/connector module \.\/not-a-connector\.mjs is not a connector: connector x: `version` is missing/);
    const unbuilt = await runCli(['status'], { ...env, AVITO_SYNC_CONNECTOR_MODULES: 'no-such-package-anywhere' }, { cwd: dir });
    expect(unbuilt.code).toBe(2);
    expect(unbuilt.stderr).toMatch(/connector module no-such-package-anywhere could not be loaded/);
  });
});
