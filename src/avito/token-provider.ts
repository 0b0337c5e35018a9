import type { Logger } from 'pino';
import { RemoteApiError } from '../errors.js';
import type { LedgerDb } from '../ledger/database.js';
import type { TokenRow } from '../ledger/tokens.js';
import { getToken, saveToken, type TokenLock } from '../ledger/tokens.js';
import { secretScrubber } from '../log/logger.js';
import { AVITO_HINTS } from './errors.js';
import type { AvitoToken } from './schemas.js';

export const AVITO_PROVIDER = 'avito';

/** Refresh this long before expiry, so no request goes out with a token about to lapse. */
export const REFRESH_AHEAD_MS = 10 * 60 * 1000;

export type TokenGrant =
  | { grant_type: 'client_credentials' }
  | { grant_type: 'authorization_code'; code: string }
  | { grant_type: 'refresh_token'; refresh_token: string };

export interface TokenProviderDeps {
  db: LedgerDb;
  accountId: string;
  authCode?: string | undefined;
  log: Logger;
  /** POST /token with the grant (authorization.json); throws RemoteApiError. */
  requestToken: (grant: TokenGrant) => Promise<AvitoToken>;
  /**
   * Runs a refresh with the token's ledger row locked (PostgreSQL: several processes never spend
   * one single-use refresh token twice). Default: no lock (one process).
   */
  lockToken?: TokenLock;
  now?: () => number;
}

/**
 * Avito access tokens: cached in memory and in the ledger, refreshed ahead of expiry and once
 * on 401/403. An authorization_code refresh token rotates on every refresh: the new one is
 * saved to the ledger before the new access token is handed out.
 */
export class AvitoTokenProvider {
  private cached: { token: string; expiresAt: number } | undefined;
  /** `updated_at` of the ledger's token row when this process last read or wrote it. */
  private seenUpdatedAt = 0;
  private inflight: Promise<string> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: TokenProviderDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Expiry of the current token (epoch ms), if one is known. */
  get expiresAt(): number | undefined {
    return this.cached?.expiresAt;
  }

  async get(): Promise<string> {
    if (this.cached && this.cached.expiresAt - REFRESH_AHEAD_MS > this.now()) return this.cached.token;
    if (!this.cached) {
      const row = await getToken(this.deps.db, this.deps.accountId, AVITO_PROVIDER);
      if (row && row.expires_at !== null && row.expires_at - REFRESH_AHEAD_MS > this.now()) {
        secretScrubber.add(row.access_token);
        secretScrubber.add(row.refresh_token);
        this.cached = { token: row.access_token, expiresAt: row.expires_at };
        this.seenUpdatedAt = row.updated_at;
        return row.access_token;
      }
    }
    return this.refresh('expiring');
  }

  /** Gets a new token; concurrent callers share one request. */
  refresh(reason: string): Promise<string> {
    this.inflight ??= this.doRefresh(reason).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * The console's Connect Avito flow: exchanges an authorization code at once (it works once and
   * expires soon); the refresh token is saved before the new access token is used, and later
   * refreshes rotate it.
   */
  async connect(code: string): Promise<void> {
    await this.inflight?.catch(() => undefined);
    const p = this.doRefresh('connect', { grant_type: 'authorization_code', code });
    const shared = p.finally(() => {
      if (this.inflight === shared) this.inflight = undefined;
    });
    shared.catch(() => undefined); // the caller sees the failure through `p`
    this.inflight = shared;
    await p;
  }

  /** Whether the ledger holds a refresh token: the account was connected by authorization_code. */
  async connected(): Promise<boolean> {
    return Boolean((await getToken(this.deps.db, this.deps.accountId, AVITO_PROVIDER))?.refresh_token);
  }

  /** Drops the cached token after the remote refused it. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  /** A refused token request as the error the user sees: what was refused and what to do. */
  private refusal(err: unknown, grant: TokenGrant, afterRefresh: boolean): unknown {
    if (!(err instanceof RemoteApiError && (err.status === 400 || err.status === 401 || err.status === 403))) return err;
    if (grant.grant_type === 'refresh_token' && this.deps.authCode === undefined) {
      // A refresh token is kept only for OAuth grants; without a code there is nothing to fall back to.
      return new RemoteApiError({
        provider: 'Avito', kind: 'bad_credentials', status: err.status, remoteMessage: err.remoteMessage,
        hint: 'Avito refused the stored refresh token: authorize the app again, set the fresh code in AVITO_AUTH_CODE and restart (`avito-sync auth reset` forgets the dead token).',
        operation: err.operation, cause: err,
      });
    }
    return new RemoteApiError({
      provider: 'Avito', kind: 'bad_credentials', status: err.status, remoteMessage: err.remoteMessage,
      hint: grant.grant_type === 'client_credentials' ? AVITO_HINTS.bad_credentials
        : afterRefresh ? 'Avito refused both the stored refresh token and AVITO_AUTH_CODE (a code works once and expires quickly): authorize the app again, set the fresh code and restart.'
          : 'Avito refused the authorization code: connect Avito again from the console, or authorize the app again and set a fresh AVITO_AUTH_CODE.',
      operation: err.operation, cause: err,
    });
  }

  private doRefresh(reason: string, forced?: TokenGrant): Promise<string> {
    const lock: TokenLock = this.deps.lockToken ?? (async (fn) => fn(await getToken(this.deps.db, this.deps.accountId, AVITO_PROVIDER), this.deps.db));
    return lock(async (row, db) => {
      // Another process refreshed while this one waited for the row: its token is the one to use
      // (the refresh token this one read is spent).
      if (!forced && row && row.updated_at > this.seenUpdatedAt && row.access_token !== this.cached?.token && row.expires_at !== null && row.expires_at - REFRESH_AHEAD_MS > this.now()) {
        secretScrubber.add(row.access_token);
        secretScrubber.add(row.refresh_token);
        this.cached = { token: row.access_token, expiresAt: row.expires_at };
        this.seenUpdatedAt = row.updated_at;
        return row.access_token;
      }
      return this.refreshWith(reason, row, db, forced);
    });
  }

  private async refreshWith(reason: string, row: TokenRow | undefined, db: LedgerDb, forced?: TokenGrant): Promise<string> {
    const { accountId, log } = this.deps;
    let grant: TokenGrant;
    if (forced) grant = forced;
    else if (row?.refresh_token) grant = { grant_type: 'refresh_token', refresh_token: row.refresh_token };
    else if (this.deps.authCode) grant = { grant_type: 'authorization_code', code: this.deps.authCode };
    else grant = { grant_type: 'client_credentials' };

    let token: AvitoToken;
    try {
      token = await this.deps.requestToken(grant);
    } catch (err) {
      const refused = err instanceof RemoteApiError && (err.status === 400 || err.status === 401 || err.status === 403);
      if (refused && grant.grant_type === 'refresh_token' && this.deps.authCode !== undefined) {
        // The stored grant is dead (spent, revoked); the operator set a code: use it rather than
        // repeating "set a fresh code" forever while one is configured.
        log.warn({ account: accountId }, 'Avito refused the stored refresh token; trying the configured AVITO_AUTH_CODE');
        grant = { grant_type: 'authorization_code', code: this.deps.authCode };
        try {
          token = await this.deps.requestToken(grant);
        } catch (again) {
          throw this.refusal(again, grant, true);
        }
      } else {
        throw this.refusal(err, grant, false);
      }
    }
    secretScrubber.add(token.access_token);
    secretScrubber.add(token.refresh_token);
    const expiresAt = this.now() + token.expires_in * 1000;
    // Saved before use: a rotated refresh token lost here would lock the account out.
    await saveToken(db, {
      accountId,
      provider: AVITO_PROVIDER,
      accessToken: token.access_token,
      refreshToken: token.refresh_token ?? row?.refresh_token ?? null,
      expiresAt,
    });
    this.cached = { token: token.access_token, expiresAt };
    this.seenUpdatedAt = (await getToken(db, accountId, AVITO_PROVIDER))?.updated_at ?? this.now();
    log.info({ grant: grant.grant_type, reason, expiresAt: new Date(expiresAt).toISOString() }, 'Avito token refreshed');
    return token.access_token;
  }
}
