import { z } from 'zod';
import { chatsConfigShape, refineChatsConfig } from './chats/config.js';

/** The documented default reply prefix: a note starting with it is sent to the buyer. */
export const DEFAULT_REPLY_PREFIX = '/avito';

/** amoCRM's OAuth consent page (the integration's "Connect" button). */
export const DEFAULT_OAUTH_URL = 'https://www.amocrm.ru/oauth';

/**
 * The `amocrm` section of an account (env: AMOCRM_*). Either a long-lived token, or OAuth: client
 * id and secret, then the console's connect button (or, by hand, a redirect URI and a one-time
 * authorization code). With OAuth the account's host may come from the consent's `referer`.
 */
export const amoConfigSchema = z
  .object({
    /** `https://<subdomain>.amocrm.ru` or `.kommo.com`. */
    baseUrl: z.string().trim().url('must be a URL like https://yourcompany.amocrm.ru').transform((u) => u.replace(/\/+$/, '')).optional(),
    /** Default `https://www.amocrm.ru/oauth`: where the console's connect button sends the operator. */
    oauthUrl: z.string().trim().url('must be a URL like https://www.amocrm.ru/oauth').default(DEFAULT_OAUTH_URL),
    /** Long-lived token of a private integration. */
    accessToken: z.string().trim().min(1).optional(),
    clientId: z.string().trim().min(1).optional(),
    clientSecret: z.string().trim().min(1).optional(),
    /** Default: the console's callback (`PUBLIC_URL/oauth/amocrm/callback`) when connected there. */
    redirectUri: z.string().trim().url().optional(),
    /** Used once; afterwards the rotating refresh token in the ledger is used. */
    authCode: z.string().trim().min(1).optional(),
    /** Default: the main pipeline. */
    pipelineId: z.coerce.number().int().positive().optional(),
    /** Default: the pipeline's first open status. */
    statusId: z.coerce.number().int().positive().optional(),
    responsibleUserId: z.coerce.number().int().positive().optional(),
    /** Default `/avito`. */
    replyPrefix: z.string().min(1).max(50).default(DEFAULT_REPLY_PREFIX),
    /** Tag on every lead. Default `avito`. */
    tag: z.string().min(1).max(50).default('avito'),
    /** A lead tag that blacklists the chat's buyer on Avito (once). Default `avito-blacklist`. */
    blacklistTag: z.string().min(1).max(50).default('avito-blacklist'),
    /** Default 6: stays under amoCRM's 7 requests per second. */
    requestsPerSecond: z.coerce.number().min(0.5).max(7).default(6),
    /** Notes per POST request. Default 100, at most 250. */
    notesPerRequest: z.coerce.number().int().min(1).max(250).default(100),
    /** Time zone of the times written in notes. Default Europe/Moscow. */
    timeZone: z.string().default('Europe/Moscow'),
    /** Language of note labels: ru or en. Default ru. */
    language: z.enum(['ru', 'en']).default('ru'),
    /** How long all traffic stops after amoCRM blocks the integration (403 HTML). Default 60. */
    banPauseMinutes: z.coerce.number().int().min(1).max(24 * 60).default(60),
    /** Chats mode (AMOCRM_MODE=chats): see chats/config.ts. */
    ...chatsConfigShape,
  })
  .superRefine((c, ctx) => {
    refineChatsConfig(c, ctx);
    if (c.accessToken) {
      if (!c.baseUrl) ctx.addIssue({ code: 'custom', path: ['baseUrl'], message: 'is required with a long-lived token' });
      return;
    }
    for (const k of ['clientId', 'clientSecret'] as const) {
      if (!c[k]) ctx.addIssue({ code: 'custom', path: [k === 'clientId' ? 'accessToken' : k], message: k === 'clientId' ? 'set a long-lived token (AMOCRM_ACCESS_TOKEN) or OAuth credentials (AMOCRM_CLIENT_ID, AMOCRM_CLIENT_SECRET), then connect from the console' : 'is required for OAuth' });
    }
    // A code typed by hand is exchanged where the integration sends it back: both must be known.
    if (c.authCode && !c.redirectUri) ctx.addIssue({ code: 'custom', path: ['redirectUri'], message: 'is required with AMOCRM_AUTH_CODE' });
    if (c.authCode && !c.baseUrl) ctx.addIssue({ code: 'custom', path: ['baseUrl'], message: 'is required with AMOCRM_AUTH_CODE' });
  });

export type AmoConfig = z.output<typeof amoConfigSchema>;
