import { writeSync } from 'node:fs';
import type { PrettyOptions } from 'pino-pretty';
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createRequire } from 'node:module';

export type { Logger } from 'pino';

/** pino-pretty, loaded only for a terminal: a daemon logging JSON never pays its ~3 MB of RSS. */
function pretty(options: PrettyOptions): DestinationStream {
  const load = createRequire(import.meta.url)('pino-pretty') as (o: PrettyOptions) => DestinationStream;
  return load(options);
}

/**
 * Exact paths whose values never reach a log line (pino redact). Named one by one rather than by
 * a loose field name: a wildcard `code` hid every error code (`ENOENT`, `SQLITE_FULL`) because
 * OAuth authorization codes share the name (issue 9). Secrets anywhere else are caught by value
 * (the scrubber below), so a path missed here still does not leak a registered secret.
 */
const SECRET_FIELDS = [
  'access_token', 'accessToken', 'refresh_token', 'refreshToken', 'client_secret', 'clientSecret',
  'authorization', 'Authorization', 'token', 'secret', 'webhookSecret', 'authCode', 'auth_code', 'password',
];
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_FIELDS.map((f) => `*.*.${f}`),
  'headers.authorization', 'req.headers.authorization', 'headers.cookie', 'req.headers.cookie',
  // An OAuth code where it travels: a callback's query and an exchange's body.
  'query.code', 'req.query.code', 'body.code', 'form.code', 'params.code',
];

/**
 * Known secret values (tokens, client secrets, the webhook secret) are replaced in every line
 * before it is written: a secret inside a URL or an error message is caught too (invariant 6).
 */
export class SecretScrubber {
  private readonly secrets = new Set<string>();
  add(value: string | undefined | null): void {
    if (value && value.length >= 6) this.secrets.add(value);
  }
  scrub(line: string): string {
    let out = line;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[Redacted]');
    return out;
  }
}

/** One process-wide scrubber: secrets are registered where they are read or minted. */
export const secretScrubber = new SecretScrubber();

/**
 * Hooks around every log line written to a terminal: a progress bar clears its line before a
 * log line and draws itself again after it (src/cli/progress.ts).
 */
export const stderrGuard: { before?: (() => void) | undefined; after?: (() => void) | undefined } = {};

/** stderr for pretty lines, with the guard's hooks around each write. */
function guardedStderr(): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      stderrGuard.before?.();
      writeSync(2, chunk);
      stderrGuard.after?.();
      cb();
    },
  });
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stderr (stdout is the CLI's own output). */
  destination?: DestinationStream | NodeJS.WritableStream;
  /** Human-readable lines; default: when stderr is a TTY. */
  pretty?: boolean;
}

/** Colour on a terminal unless NO_COLOR is set to anything non-empty (no-color.org). */
export function colorWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return !env.NO_COLOR;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const usePretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  let dest: DestinationStream | NodeJS.WritableStream;
  if (usePretty) {
    dest = pretty({ destination: guardedStderr(), sync: true, colorize: colorWanted(), translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' });
  } else {
    dest = options.destination ?? pino.destination({ fd: 2, sync: true });
  }
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      hooks: { streamWrite: (s: string) => secretScrubber.scrub(s) },
      serializers: { err: pino.stdSerializers.err },
    },
    dest as DestinationStream,
  );
}

/** A logger that writes lines into an array: for tests and for commands that collect output. */
export function memoryLogger(level = 'trace'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level, destination: stream, pretty: false }), lines };
}
