import { randomBytes, timingSafeEqual } from 'node:crypto';

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
 * Console sessions, in this process's memory: a restart logs operators out, which is the safe
 * side. Idle sessions expire; the map is swept on every login.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly idleMs = SESSION_IDLE_MS, private readonly now: () => number = Date.now) {}

  create(): Session {
    this.sweep();
    const s: Session = { id: randomToken(), csrf: randomToken(), expiresAt: this.now() + this.idleMs };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id, its idle timer renewed; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    s.expiresAt = this.now() + this.idleMs;
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
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
