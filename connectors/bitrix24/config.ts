import { z } from 'zod';

/** The documented default reply prefix: a timeline comment starting with it is sent to the buyer. */
export const DEFAULT_REPLY_PREFIX = '/avito';

/**
 * An incoming webhook's base URL: `https://<portal>/rest/<user id>/<code>/` (Bitrix24 docs,
 * local-integrations/local-webhooks.md). The user id is the webhook's employee: calls run with
 * their rights, and new leads are theirs unless BITRIX24_RESPONSIBLE_ID says otherwise.
 */
const WEBHOOK_PATH = /\/rest\/(\d+)\/([^/]+)\/?$/;

/** The `bitrix24` section of an account (env: BITRIX24_*). */
export const b24ConfigSchema = z
  .object({
    /** `https://<portal>.bitrix24.ru/rest/<user>/<code>/`. */
    webhookUrl: z
      .string()
      .trim()
      .url('must be a URL like https://yourcompany.bitrix24.ru/rest/1/abcdef0123456789/')
      .refine((u) => WEBHOOK_PATH.test(new URL(u).pathname), 'must end in /rest/<user id>/<webhook code>/ (copy it from the incoming webhook\'s page)')
      .transform((u) => (u.endsWith('/') ? u : `${u}/`)),
    /** `lead` or `deal`: what one Avito chat becomes. Default `lead`. */
    entity: z.enum(['lead', 'deal']).default('lead'),
    /** The user new leads or deals are assigned to. Default: the webhook's user. */
    responsibleId: z.coerce.number().int().positive().optional(),
    /** Default `/avito`. */
    replyPrefix: z.string().min(1).max(50).default(DEFAULT_REPLY_PREFIX),
    /** The outbound webhook's `application_token`: events without it are refused (401). */
    applicationToken: z.string().trim().min(1).optional(),
    /** The deal pipeline (`CATEGORY_ID`) for deals. Default: the general pipeline (0). */
    categoryId: z.coerce.number().int().min(0).optional(),
    /** `CURRENCY_ID` of the price. Default `RUB`. */
    currency: z.string().regex(/^[A-Z]{3}$/).default('RUB'),
    /** Requests per second the leaky bucket drains (Bitrix24: 2; Enterprise: 5). Default 2. */
    requestsPerSecond: z.coerce.number().min(0.5).max(5).default(2),
    /**
     * Burst the client allows itself (Bitrix24's bucket holds 50, Enterprise 250, shared by every
     * app calling from this IP). Default 40: room for the others.
     */
    burst: z.coerce.number().int().min(1).max(250).default(40),
    /** Comments per `batch` request (Bitrix24 runs at most 50 commands per batch). Default 50. */
    commentsPerRequest: z.coerce.number().int().min(1).max(50).default(50),
    /** How long all traffic stops after OVERLOAD_LIMIT before one call probes again. Default 60. */
    overloadPauseMinutes: z.coerce.number().int().min(1).max(7 * 24 * 60).default(60),
    /** Leads (deals) that had an Avito message within this many days are polled for replies. Default 30. */
    replyPollDays: z.coerce.number().int().min(1).max(365).default(30),
    /** Time zone of the times written in comments. Default Europe/Moscow. */
    timeZone: z.string().default('Europe/Moscow'),
    /** Language of comment labels: ru or en. Default ru. */
    language: z.enum(['ru', 'en']).default('ru'),
  })
  .transform((c) => {
    const m = WEBHOOK_PATH.exec(new URL(c.webhookUrl).pathname)!;
    return { ...c, webhookUserId: Number(m[1]), portal: new URL(c.webhookUrl).host.toLowerCase() };
  });

export type B24Config = z.output<typeof b24ConfigSchema>;
