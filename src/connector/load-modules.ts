import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ConnectorDefinition } from '../connector-sdk/contract.js';
import { definitionProblem } from '../connector-sdk/validate.js';
import { ENV_KEYS } from '../config/env-keys.js';
import { readConfigFile, type LoadOptions } from '../config/load-config.js';
import { ConfigError } from '../errors.js';
import { BUILT_IN_CONNECTORS } from './built-ins.js';

/** One `connectorModules` entry and the folder its relative path is read from. */
interface ModuleSpec {
  spec: string;
  base: string;
  key: string;
}

/** The entries of AVITO_SYNC_CONNECTOR_MODULES (relative to the working folder) or the file's `connectorModules` (relative to the file). */
export function connectorModuleSpecs(options: LoadOptions = {}): ModuleSpec[] {
  const env = options.env ?? process.env;
  const raw = env.AVITO_SYNC_CONNECTOR_MODULES;
  if (raw !== undefined && raw.trim() !== '') {
    return raw.split(',').map((s) => s.trim()).filter(Boolean).map((spec) => ({ spec, base: process.cwd(), key: 'AVITO_SYNC_CONNECTOR_MODULES' }));
  }
  const file = options.flags?.config ?? env.AVITO_SYNC_CONFIG;
  if (!file) return [];
  const list = readConfigFile(file).connectorModules;
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new ConfigError(`Invalid connectorModules in ${file}: must be a list of module specifiers or paths.`, 'connectorModules');
  return (list as string[]).map((spec) => ({ spec, base: path.dirname(path.resolve(file)), key: 'connectorModules' }));
}

function isPath(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || path.isAbsolute(spec) || spec.startsWith('file:');
}

/** A package folder's entry: `exports["."]` (import or default) or `main`, else index.js. */
function packageEntry(dir: string, m: ModuleSpec): string {
  let pkg: { exports?: unknown; main?: string } = {};
  try {
    pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    return path.join(dir, 'index.js');
  }
  let entry: unknown = pkg.exports;
  if (typeof entry === 'object' && entry !== null && '.' in entry) entry = (entry as Record<string, unknown>)['.'];
  while (typeof entry === 'object' && entry !== null) {
    const e = entry as Record<string, unknown>;
    entry = e.import ?? e.default ?? e.node;
    if (entry === undefined) break;
  }
  const rel = typeof entry === 'string' ? entry : (pkg.main ?? 'index.js');
  const file = path.resolve(dir, rel);
  if (!existsSync(file)) throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} points to ${rel}, which does not exist (is the package built?).`, m.key);
  return file;
}

/** Where `spec` is, as an import URL: a path from `base`, or a package installed where the user runs us. */
function locate(m: ModuleSpec): string {
  if (m.spec.startsWith('file:')) return m.spec;
  if (isPath(m.spec)) {
    const file = path.resolve(m.base, m.spec);
    if (!existsSync(file)) throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} does not exist (looked for ${file}).`, m.key);
    return pathToFileURL(statSync(file).isDirectory() ? packageEntry(file, m) : file).href;
  }
  try {
    return pathToFileURL(createRequire(path.join(m.base, 'noop.js')).resolve(m.spec)).href;
  } catch {
    return m.spec; // import-only packages: Node resolves them from this package's folder
  }
}

/** Imports each connector module; its default export must be a ConnectorDefinition. A bad one is a ConfigError (exit 2) naming it and why. */
export async function loadConnectorModules(specs: readonly ModuleSpec[]): Promise<ConnectorDefinition[]> {
  const out: ConnectorDefinition[] = [];
  for (const m of specs) {
    let mod: { default?: unknown };
    try {
      mod = (await import(locate(m))) as { default?: unknown };
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} could not be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}.`, m.key, { cause: err });
    }
    const problem = definitionProblem(mod.default);
    if (problem) throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} is not a connector: ${problem}.`, m.key);
    out.push(mod.default as ConnectorDefinition);
  }
  return out;
}

/** The built-in connectors and those the configuration names; ids and env variable names must not clash. */
export async function knownConnectors(options: LoadOptions = {}): Promise<ConnectorDefinition[]> {
  const specs = connectorModuleSpecs(options);
  const loaded = await loadConnectorModules(specs);
  const all = [...BUILT_IN_CONNECTORS];
  const envNames = new Map<string, string>([
    ...ENV_KEYS.map((k) => [k.env, 'the core'] as [string, string]),
    ...all.flatMap((d) => d.env.map((v) => [v.name, `connector ${d.id}`] as [string, string])),
  ]);
  loaded.forEach((def, i) => {
    const m = specs[i]!;
    const clash = all.find((d) => d.id === def.id);
    if (clash) throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} declares id "${def.id}", which another connector already has.`, m.key);
    for (const v of def.env) {
      const owner = envNames.get(v.name);
      if (owner) throw new ConfigError(`Invalid ${m.key}: connector module ${m.spec} declares env variable ${v.name}, which ${owner} already reads.`, m.key);
      envNames.set(v.name, `connector ${def.id}`);
    }
    all.push(def);
  });
  return all;
}
