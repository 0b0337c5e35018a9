import type { LedgerDb } from '../ledger/database.js';
import { saveOAuthState, takeOAuthState } from '../ledger/console-sessions.js';
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
 * most once and only within STATE_TTL_MS. They are kept in the ledger (as hashes), so the
 * provider's callback may reach any daemon behind a load balancer, and taken in one statement, so
 * two processes never both accept one. A callback whose state is not there is refused.
 */
export class OAuthStates {
  constructor(private readonly db: LedgerDb, private readonly ttlMs = STATE_TTL_MS, private readonly now: () => number = Date.now) {}

  async issue(p: Omit<PendingConnect, 'expiresAt'>): Promise<string> {
    const state = randomToken();
    await saveOAuthState(this.db, state, { ...p, expiresAt: this.now() + this.ttlMs });
    return state;
  }

  /** Takes the state for `provider` (it cannot be used again); undefined when not issued, used, expired or for another provider. */
  async take(state: string | undefined, provider: string): Promise<PendingConnect | undefined> {
    if (!state) return undefined;
    const p = await takeOAuthState(this.db, state);
    if (!p || p.provider !== provider || p.expiresAt <= this.now()) return undefined;
    return p;
  }
}
