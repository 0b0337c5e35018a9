import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { isPostgresUrl } from '../ledger/location.js';
import { ENV_KEYS, envKeyForPath, formatPath } from './env-keys.js';
import { configSchema, type AccountConfig, type AppConfigParsed } from './schema.js';

export interface AppConfig extends AppConfigParsed {
  /** Folder that holds the ledger and kept files (voice messages). */
  dataDir: string;
  /** Enabled connector ids, resolved from `connectors` and the accounts. */
  enabledConnectors: string[];
  /** Where the file came from, if any. */
  configFile?: string;
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

function readConfigFile(file: string): Tree {
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

/** A schema issue as a ConfigError that names the key the way the user set it. */
export function describeIssue(issue: { path: readonly PropertyKey[]; message: string }, fromFile: boolean): ConfigError {
  const envKey = envKeyForPath(issue.path);
  const filePath = formatPath(issue.path);
  const name = envKey ? envKey.env + (fromFile ? ` (or ${filePath} in the config file)` : '') : filePath || 'configuration';
  const what = envKey ? `: ${envKey.describe}` : '';
  return new ConfigError(`Invalid ${name}: ${issue.message}${what}.`, envKey?.env ?? filePath);
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

  for (const key of ENV_KEYS) {
    const raw = env[key.env];
    if (raw === undefined || raw.trim() === '') continue;
    const value = key.kind === 'list' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw.trim();
    setPath(tree, key.path, value);
  }
  if (flags.db !== undefined) tree.db = flags.db;
  if (flags.logLevel !== undefined) tree.logLevel = flags.logLevel;
  if (flags.port !== undefined) tree.port = flags.port;

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) throw describeIssue(parsed.error.issues[0]!, Boolean(file));
  const cfg = parsed.data;

  const requested = cfg.connectors;
  let enabledConnectors: string[];
  if (requested && requested.length > 0) {
    enabledConnectors = requested.length === 1 && requested[0] === 'none' ? [] : requested;
    if (enabledConnectors.includes('none')) {
      throw new ConfigError('Invalid AVITO_SYNC_CONNECTORS: `none` cannot be combined with connector names.', 'AVITO_SYNC_CONNECTORS');
    }
  } else {
    enabledConnectors = cfg.accounts.some((a) => hasConnectorConfig(a, 'amocrm')) ? ['amocrm'] : [];
  }

  // Voice files live beside a SQLite ledger; with PostgreSQL, in ./data (unless set).
  const dataDir = path.resolve(cfg.dataDir ?? (isPostgresUrl(cfg.db) ? 'data' : path.dirname(path.resolve(cfg.db))));
  const out: AppConfig = { ...cfg, dataDir, enabledConnectors };
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
      const envKey = i === 0 ? envKeyForPath(p) : undefined;
      const name = envKey ? envKey.env + (cfg.configFile ? ` (or ${formatPath(p)} in ${cfg.configFile})` : '') : formatPath(p);
      throw new ConfigError(
        `${name} is not set: it must hold ${envKey?.describe ?? `the Avito app's ${field} for account ${account.id}`}.`,
        envKey?.env ?? formatPath(p),
      );
    }
  });
}
