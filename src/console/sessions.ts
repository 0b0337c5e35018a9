import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { LedgerDb } from '../ledger/database.js';
import { deleteConsoleSession, saveConsoleSession, touchConsoleSession } from '../ledger/console-sessions.js';

/** The session cookie's name. */
export const SESSION_COOKIE = 'avito_sync_console';
/** A cookie that carries the login form's CSRF token before there is a session. */
export const LOGIN_COOKIE = 'avito_sync_console_login';
/** Default 12 h: a session unused this long is gone. */
export const SESSION_IDLE_MS = 12 * 3_600_000;

export interface Session {
  id: string;
  /** The token every form of this session carries (`_csrf`); checked on every POST. */
  csrf: string;
  expiresAt: number;
}

/** 32 random bytes, URL-safe. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares secrets in constant time. */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Console sessions, kept in the ledger: with several daemons behind a load balancer any process
 * serves the operator's next request. Only a hash of the session id is stored; idle sessions
 * expire (their rows go at the next login). Logging out ends the session in every process.
 */
export class SessionStore {
  constructor(private readonly db: LedgerDb, private readonly idleMs = SESSION_IDLE_MS, private readonly now: () => number = Date.now) {}

  async create(): Promise<Session> {
    const now = this.now();
    const s: Session = { id: randomToken(), csrf: randomToken(), expiresAt: now + this.idleMs };
    await saveConsoleSession(this.db, s.id, { csrf: s.csrf, expiresAt: s.expiresAt }, now);
    return s;
  }

  /** The live session with this id, its idle timer renewed; undefined when unknown or expired. */
  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const now = this.now();
    const s = await touchConsoleSession(this.db, id, now, now + this.idleMs);
    return s ? { id, csrf: s.csrf, expiresAt: s.expiresAt } : undefined;
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id) await deleteConsoleSession(this.db, id);
  }
}

/** The cookies of a request (`Cookie` header), first value of each name. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (name in out) continue;
    try {
      out[name] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      /* a malformed value is ignored */
    }
  }
  return out;
}

/**
 * A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure behind HTTPS. `maxAgeSeconds`
 * 0 deletes the cookie.
 */
export function cookie(name: string, value: string, o: { secure: boolean; maxAgeSeconds?: number; path?: string }): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${o.path ?? '/'}`, 'HttpOnly', 'SameSite=Strict'];
  if (o.maxAgeSeconds !== undefined) parts.push(`Max-Age=${o.maxAgeSeconds}`);
  if (o.secure) parts.push('Secure');
  return parts.join('; ');
}
