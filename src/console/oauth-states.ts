import { randomToken } from './sessions.js';

/** Default 15 minutes: time to go through a provider's consent page. */
export const STATE_TTL_MS = 15 * 60_000;

export interface PendingConnect {
  /** `avito`, or a connector id. */
  provider: string;
  accountId: string;
  /** The callback URL the authorization was asked with (the token request repeats it). */
  redirectUri: string;
  expiresAt: number;
}

/**
 * OAuth `state` values the console issued: random, bound to one provider and account, used at
 * most once and only within STATE_TTL_MS. A callback whose state is not here is refused.
 */
export class OAuthStates {
  private readonly pending = new Map<string, PendingConnect>();

  constructor(private readonly ttlMs = STATE_TTL_MS, private readonly now: () => number = Date.now) {}

  issue(p: Omit<PendingConnect, 'expiresAt'>): string {
    const t = this.now();
    for (const [k, v] of this.pending) if (v.expiresAt <= t) this.pending.delete(k);
    const state = randomToken();
    this.pending.set(state, { ...p, expiresAt: t + this.ttlMs });
    return state;
  }

  /** Takes the state for `provider` (it cannot be used again); undefined when not issued, used, expired or for another provider. */
  take(state: string | undefined, provider: string): PendingConnect | undefined {
    if (!state) return undefined;
    const p = this.pending.get(state);
    if (!p) return undefined;
    this.pending.delete(state);
    if (p.provider !== provider || p.expiresAt <= this.now()) return undefined;
    return p;
  }
}
