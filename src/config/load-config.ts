import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { ConnectorDefinition } from '../connector-sdk/contract.js';
import { BUILT_IN_CONNECTORS } from '../connector/built-ins.js';
import { ConfigError } from '../errors.js';
import { isPostgresUrl } from '../ledger/location.js';
import { z } from 'zod';
import { ENV_KEYS, envKeyForPath, envTable, formatPath, type EnvKey } from './env-keys.js';
import { describeProblem } from './describe-problem.js';
import { accountSchema, configSchema, type AccountConfig, type AppConfigParsed } from './schema.js';
import { unknownKeys } from './strict-keys.js';

export interface AppConfig extends AppConfigParsed {
  /** Folder that holds the ledger and kept files (voice messages). */
  dataDir: string;
  /** Enabled connector ids, resolved from `connectors` and the accounts. */
  enabledConnectors: string[];
  /** Where the file came from, if any. */
  configFile?: string;
  /** The connectors this process knows: built-ins and those loaded from `connectorModules`. */
  connectorDefinitions: readonly ConnectorDefinition[];
  /** The environment variables read: the core's and every known connector's. */
  envKeys: readonly EnvKey[];
}

/** Flags override everything (design.md §4: flags > environment > file > defaults). */
export interface ConfigFlags {
  config?: string;
  db?: string;
  logLevel?: string;
  port?: string | number;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  flags?: ConfigFlags;
  /** The connectors to read env variables and config sections for. Default: the built-ins. */
  known?: readonly ConnectorDefinition[];
  /** Connectors whose sections an account may hold (checked by their own schemas). Default: `known`. */
  connectors?: readonly { id: string; configSchema: z.ZodType }[];
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, p: readonly (string | number)[], value: unknown): void {
  let node: Record<string | number, unknown> = tree;
  for (let i = 0; i < p.length - 1; i++) {
    const key = p[i]!;
    const nextIsIndex = typeof p[i + 1] === 'number';
    if (node[key] === undefined || node[key] === null) node[key] = nextIsIndex ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  }
  node[p[p.length - 1]!] = value;
}

/** The YAML parser, loaded only for a YAML config file (~3 MB of RSS a JSON or env setup never needs). */
function parseYaml(text: string): unknown {
  return (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
}

export function readConfigFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`The config file ${file} cannot be read: ${(err as Error).message}.`, '--config', { cause: err });
  }
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`The config file ${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}.`, '--config', { cause: err });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`The config file ${file} must hold an object at the top level.`, '--config');
  }
  return data as Tree;
}

/** The value at `p` in a plain tree, for echoing a bad value back. */
function valueAt(tree: unknown, p: readonly PropertyKey[]): unknown {
  let node = tree;
  for (const k of p) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[k];
  }
  return node;
}

/**
 * A schema issue as a ConfigError that names the key the way the user set it and echoes the
 * value back (`Invalid PORT: "eighty" is not a whole number`), never zod's own wording.
 * `input` is the tree (or section) the issue's path points into; `table` the env variables known
 * (the core's and the connectors').
 */
export function describeIssue(issue: z.core.$ZodIssue | { path: readonly PropertyKey[]; message: string }, fromFile: boolean, input?: unknown, at: readonly PropertyKey[] = [], table: readonly EnvKey[] = ENV_KEYS): ConfigError {
  const fullPath = [...at, ...issue.path];
  const envKey = envKeyForPath(fullPath, table);
  const filePath = formatPath(fullPath);
  const name = envKey ? envKey.env + (fromFile ? ` (or ${filePath} in the config file)` : '') : filePath || 'configuration';
  const what = envKey ? ` (${envKey.describe})` : '';
  const problem = describeProblem(issue, input === undefined ? undefined : valueAt(input, issue.path));
  return new ConfigError(`Invalid ${name}: ${problem}${what}.`, envKey?.env ?? filePath);
}

/**
 * Unknown keys in the config file, at every level and in every connector section, refused with
 * the nearest known key (exit 2). Environment variables are not checked: the environment holds
 * other programs' variables too.
 */
function refuseUnknownKeys(file: string, tree: Tree, connectors: readonly { id: string; configSchema: z.ZodType }[]): void {
  const account = z.object({ ...accountSchema.shape, ...Object.fromEntries(connectors.map((c) => [c.id, c.configSchema])) });
  const view = configSchema.extend({ accounts: z.array(account) });
  const found = unknownKeys(view, tree);
  if (found.length === 0) return;
  const list = found.map((u) => `${formatPath(u.path)}${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}`);
  throw new ConfigError(
    `Unknown key${found.length > 1 ? 's' : ''} in ${file}: ${list.join(', ')}. Correct or remove ${found.length > 1 ? 'them' : 'it'}; avito-sync does not guess at settings.`,
    formatPath(found[0]!.path),
  );
}

/**
 * Reads the config file (JSON or YAML), overlays environment variables and flags, validates
 * the result. Throws ConfigError naming the first bad key.
 */
export function loadConfig(options: LoadOptions = {}): AppConfig {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const file = flags.config ?? env.AVITO_SYNC_CONFIG;
  const tree: Tree = file ? readConfigFile(file) : {};
  const known = options.known ?? BUILT_IN_CONNECTORS;
  const table = envTable(known);
  // A connector is on by default when an account's file section configures it or one of its
  // `enables` variables is set (decided before env variables fill the first account's section).
  const byDefault = new Set<string>();
  const fileAccounts = Array.isArray(tree.accounts) ? (tree.accounts as unknown[]) : [];
  for (const def of known) {
    if (fileAccounts.some((a) => typeof a === 'object' && a !== null && hasConnectorConfig(a as AccountConfig, def.id))) byDefault.add(def.id);
  }
  if (file) refuseUnknownKeys(file, tree, options.connectors ?? known);

  for (const key of table) {
    if (key.connector?.enables && (env[key.env] ?? '').trim() !== '') byDefault.add(key.connector.id);
  }
  for (const key of table) {
    const raw = env[key.env];
    if (raw === undefined || raw.trim() === '') continue;
    const value = key.kind === 'list' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw.trim();
    setPath(tree, key.path, value);
  }
  if (flags.db !== undefined) tree.db = flags.db;
  if (flags.logLevel !== undefined) tree.logLevel = flags.logLevel;
  if (flags.port !== undefined) tree.port = flags.port;

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) throw describeIssue(parsed.error.issues[0]!, Boolean(file), tree, [], table);
  const cfg = parsed.data;

  const requested = cfg.connectors;
  let enabledConnectors: string[];
  if (requested && requested.length > 0) {
    enabledConnectors = requested.length === 1 && requested[0] === 'none' ? [] : requested;
    if (enabledConnectors.includes('none')) {
      throw new ConfigError('Invalid AVITO_SYNC_CONNECTORS: `none` cannot be combined with connector names.', 'AVITO_SYNC_CONNECTORS');
    }
  } else {
    enabledConnectors = known.filter((d) => byDefault.has(d.id)).map((d) => d.id);
  }

  // Voice files live beside a SQLite ledger; with PostgreSQL, in ./data (unless set).
  const dataDir = path.resolve(cfg.dataDir ?? (isPostgresUrl(cfg.db) ? 'data' : path.dirname(path.resolve(cfg.db))));
  const out: AppConfig = { ...cfg, dataDir, enabledConnectors, connectorDefinitions: known, envKeys: table };
  if (file) out.configFile = file;
  return out;
}

export function hasConnectorConfig(account: AccountConfig, connectorId: string): boolean {
  const section = (account as Record<string, unknown>)[connectorId];
  return typeof section === 'object' && section !== null && Object.keys(section).length > 0;
}

/**
 * Commands that talk to Avito need credentials; this names the missing key the way the user
 * would set it (the env variable for the first account, the file path otherwise).
 */
export function requireAvitoCredentials(cfg: AppConfig): void {
  cfg.accounts.forEach((account, i) => {
    for (const field of ['clientId', 'clientSecret'] as const) {
      if (account.avito[field]) continue;
      const p = ['accounts', i, 'avito', field];
      const envKey = i === 0 ? envKeyForPath(p, cfg.envKeys) : undefined;
      const name = envKey ? envKey.env + (cfg.configFile ? ` (or ${formatPath(p)} in ${cfg.configFile})` : '') : formatPath(p);
      throw new ConfigError(
        `${name} is not set: it must hold ${envKey?.describe ?? `the Avito app's ${field} for account ${account.id}`}.`,
        envKey?.env ?? formatPath(p),
      );
    }
  });
}
