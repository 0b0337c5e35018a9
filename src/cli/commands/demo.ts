import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { knownConnectors } from '../../connector/load-modules.js';
import { OperationalError, ValidationError } from '../../errors.js';
import { createLogger } from '../../log/logger.js';
import { runDemo, type DemoActions } from '../../sandbox/demo.js';
import { out, type GlobalOptions } from '../context.js';

/**
 * Where a running `demo --keep` says how to reach it: `demo buyer` / `demo manager` in another
 * terminal read it. Mode 0600: it holds the control token.
 */
export function demoStateFile(): string {
  return process.env.AVITO_SYNC_DEMO_STATE ?? path.join(tmpdir(), `avito-sync-demo-${process.getuid?.() ?? 'user'}.json`);
}

interface DemoState {
  pid: number;
  control: string;
  token: string;
}

/** A loopback endpoint through which `demo buyer|manager TEXT` act in the running demo. */
function controlServer(act: DemoActions, token: string): Promise<Server> {
  const server = createServer((req, res) => {
    const who = /^\/(buyer|manager)$/.exec(req.url ?? '')?.[1] as 'buyer' | 'manager' | undefined;
    if (req.method !== 'POST' || !who || req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const text = String((JSON.parse(body || '{}') as { text?: unknown }).text ?? '').trim();
      act[who](text).then(
        (said) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ said })),
        (err: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message })),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function shellQuote(v: string): string {
  return /^[\w./:@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `demo buyer TEXT` / `demo manager TEXT`: act in the demo another terminal keeps running. */
async function actInRunningDemo(who: 'buyer' | 'manager', words: string[]): Promise<void> {
  const text = words.join(' ').trim();
  if (!text) throw new ValidationError(`Say what the ${who} writes: avito-sync demo ${who} "text".`);
  let state: DemoState;
  try {
    state = JSON.parse(readFileSync(demoStateFile(), 'utf8')) as DemoState;
  } catch {
    throw new OperationalError('No demo is running: start one with `avito-sync demo --keep` in another terminal, then try again.');
  }
  const res = await fetch(`${state.control}/${who}`, { method: 'POST', headers: { authorization: `Bearer ${state.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(30_000) }).catch(() => {
    throw new OperationalError(`The demo at ${state.control} does not answer (it was stopped?): start one with \`avito-sync demo --keep\`.`);
  });
  const data = (await res.json()) as { said?: string; error?: string };
  if (!res.ok) throw new OperationalError(`The demo could not do that: ${data.error ?? res.status}.`);
  out(data.said ?? 'done');
}

export function registerDemo(program: Command): void {
  const demo = program
    .command('demo')
    .description("a sandbox Avito and a connector's sandbox CRM on loopback with the daemon between them: see the whole loop in seconds")
    .option('--crm <id>', 'the connector whose sandbox CRM to use (default: the first with a sandbox; a wrong id lists the choices)')
    .addOption(new Option('--connector <id>', 'the same as --crm').hideHelp())
    .option('--mode <mode>', "the sandbox's mode, when the connector has several (the first is the default; a wrong one lists them)")
    .option('--keep', 'keep the sandboxes and the daemon running afterwards (Ctrl-C stops); then act with `demo buyer` / `demo manager`')
    .option('--console', 'keep running with the web console on; prints its address and password')
    .action(async (opts: { keep?: boolean; crm?: string; connector?: string; mode?: string; console?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const log = createLogger({ level: g.verbose ? 'debug' : (g.logLevel ?? 'warn') });
      const known = await knownConnectors({ flags: g });
      const crm = opts.crm ?? opts.connector;
      const { stop, urls, env, act } = await runDemo({ log, say: out, keep: Boolean(opts.keep), console: Boolean(opts.console), known, ...(crm ? { connector: crm } : {}), ...(opts.mode ? { mode: opts.mode } : {}) });
      if (!opts.keep && !opts.console) return;
      out('');
      for (const [k, v] of Object.entries(urls)) out(`  ${k}: ${v}`);
      const token = randomBytes(16).toString('hex');
      const server = await controlServer(act, token);
      const address = server.address();
      const control = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const stateFile = demoStateFile();
      writeFileSync(stateFile, JSON.stringify({ pid: process.pid, control, token } satisfies DemoState), { mode: 0o600 });
      out('');
      out('Point the other commands at the sandboxes (paste into another terminal):');
      out('');
      for (const [k, v] of Object.entries(env)) out(`export ${k}=${shellQuote(v)}`);
      out('');
      out('then try: npx avito-sync doctor · npx avito-sync status · npx avito-sync chats list · npx avito-sync reconcile --report');
      out('Play a part: npx avito-sync demo buyer "Можно посмотреть завтра?" · npx avito-sync demo manager "Да, приходите к 12:00"');
      const interactive = process.stdin.isTTY === true;
      if (interactive) out('Or type here: `buyer TEXT` or `manager TEXT`, Enter. Ctrl-C stops.');
      else out('Running; Ctrl-C stops.');
      await new Promise<void>((resolve) => {
        let rl: ReturnType<typeof createInterface> | undefined;
        const done = () => {
          rl?.close();
          server.close();
          rmSync(stateFile, { force: true });
          void stop().then(resolve);
        };
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
        if (interactive) {
          rl = createInterface({ input: process.stdin });
          rl.on('SIGINT', done); // a terminal-mode readline takes Ctrl-C itself
          rl.on('line', (line) => {
            const m = /^\s*(buyer|manager)\s+(.+)$/i.exec(line);
            if (!m) {
              if (line.trim()) out('  say `buyer TEXT` or `manager TEXT`');
              return;
            }
            act[m[1]!.toLowerCase() as 'buyer' | 'manager'](m[2]!).then((said) => out(`  ${said}`), (err: unknown) => out(`  could not: ${(err as Error).message}`));
          });
        }
      });
    });
  demo.command('buyer <text...>').description('in a running `demo --keep`: the buyer writes this on Avito').action((words: string[]) => actInRunningDemo('buyer', words));
  demo.command('manager <text...>').description('in a running `demo --keep`: the manager answers this from the CRM').action((words: string[]) => actInRunningDemo('manager', words));
}
