import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';

/** This package's root folder (where package.json names avito-crm-sync), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'avito-crm-sync') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the avito-crm-sync package folder');
    dir = up;
  }
}

export interface ScaffoldOptions {
  /** The connector id: lower-case letters, digits and -. */
  name: string;
  /** Where to write. Default `./avito-sync-connector-<name>`. */
  dir?: string;
  /** How the package depends on avito-crm-sync. Default: `file:` this package's folder. */
  dependency?: string;
}

/**
 * `avito-sync connector new NAME`: writes a connector package from `templates/connector`: a
 * manifest (defineConnector with env variables), a client on fetch, the connector, a fake CRM on
 * loopback, the contract kit test, a README and a tsconfig. Its tests pass as generated.
 */
export function scaffoldConnector(o: ScaffoldOptions): { dir: string; files: string[] } {
  if (!/^[a-z][a-z0-9-]{0,40}$/.test(o.name)) throw new ConfigError(`Invalid connector name "${o.name}": use lower-case letters, digits and -, starting with a letter.`, 'NAME');
  const dir = path.resolve(o.dir ?? `avito-sync-connector-${o.name}`);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new ConfigError(`${dir} exists and is not empty: choose another --dir.`, '--dir');
  const root = packageRoot();
  const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const words = o.name.split('-');
  const tokens: Record<string, string> = {
    __ID__: o.name,
    __CLASS__: words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join(''),
    __ENV__: words.join('_').toUpperCase(),
    __SDK_DEP__: o.dependency ?? `file:${root}`,
    __SDK_RANGE__: `^${version}`,
  };
  const template = path.join(root, 'templates', 'connector');
  const files: string[] = [];
  const copy = (rel: string) => {
    const from = path.join(template, rel);
    if (statSync(from).isDirectory()) {
      for (const e of readdirSync(from)) copy(path.join(rel, e));
      return;
    }
    // npm drops files named .gitignore from published packages, so the template keeps it as `gitignore`.
    const to = path.join(dir, rel === 'gitignore' ? '.gitignore' : rel);
    mkdirSync(path.dirname(to), { recursive: true });
    let text = readFileSync(from, 'utf8');
    for (const [k, v] of Object.entries(tokens)) text = text.split(k).join(v);
    writeFileSync(to, text);
    files.push(path.relative(dir, to));
  };
  copy('.');
  return { dir, files: files.sort() };
}
