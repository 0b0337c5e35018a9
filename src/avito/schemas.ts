import { z } from 'zod';

/**
 * Raw Avito shapes, validated leniently: the fields we rely on are checked, everything else
 * is kept as it came. Sources: messenger.json (components.schemas), authorization.json,
 * user-info.json (UserInfoSelf), items.json (ItemsInfoWithCategoryAvito).
 * Ids can exceed 32 bits: every id becomes a string here.
 */

const id = z.union([z.string().min(1), z.number()]).transform((v) => String(v));
const optId = z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v)));
const optNum = z.number().nullish().catch(undefined).transform((v) => v ?? undefined);
const optStr = z.string().nullish().catch(undefined).transform((v) => v ?? undefined);

/** `MessageContent`: every field optional; appCall/file/video come with `{}`. */
export const avitoMessageContentSchema = z.preprocess(
  (v) => (v === null || v === undefined || typeof v !== 'object' ? {} : v),
  z.looseObject({
    text: optStr,
    flow_id: optStr,
    image: z.looseObject({ sizes: z.record(z.string(), z.string()).catch({}) }).nullish().catch(undefined),
    voice: z.looseObject({ voice_id: optStr }).nullish().catch(undefined),
    link: z.looseObject({ text: optStr, url: optStr }).nullish().catch(undefined),
    item: z.looseObject({ title: optStr, price_string: optStr, item_url: optStr, image_url: optStr }).nullish().catch(undefined),
    location: z.looseObject({ lat: optNum, lon: optNum, text: optStr, title: optStr, kind: optStr }).nullish().catch(undefined),
    call: z.looseObject({ status: optStr, target_user_id: optId }).nullish().catch(undefined),
  }),
);
export type AvitoMessageContent = z.output<typeof avitoMessageContentSchema>;

/** `Messages[]` item (v3). `type` is kept as a string: unknown types are accepted. */
export const avitoMessageSchema = z.looseObject({
  id,
  author_id: optId,
  created: z.number(),
  direction: optStr,
  type: z.string().default('text'),
  content: avitoMessageContentSchema,
  quote: z.unknown().optional(),
  is_read: z.boolean().nullish().catch(undefined),
  read: optNum,
});
export type AvitoMessage = z.output<typeof avitoMessageSchema>;

/**
 * The messages list: documented as a bare array, answered as `{"messages":[...]}` (design.md §2).
 * Both are accepted; `shape` says which arrived so the client can log the surprise once.
 */
export const avitoMessageListSchema = z.union([
  z.array(z.unknown()).transform((messages) => ({ messages, shape: 'array' as const })),
  z.looseObject({ messages: z.array(z.unknown()).nullish() }).transform((o) => ({ messages: o.messages ?? [], shape: 'object' as const })),
]);

export const avitoChatUserSchema = z.looseObject({
  id,
  name: optStr,
  public_user_profile: z
    .looseObject({ user_id: optId, item_id: optId, url: optStr })
    .nullish()
    .catch(undefined),
});
export type AvitoChatUser = z.output<typeof avitoChatUserSchema>;

/** `Chat` (v2). */
export const avitoChatSchema = z.looseObject({
  id: z.string().min(1),
  created: optNum,
  updated: z.number(),
  context: z
    .looseObject({
      type: optStr,
      value: z
        .looseObject({
          id: optId,
          title: optStr,
          url: optStr,
          price_string: optStr,
          status_id: optNum,
          user_id: optId,
          images: z.unknown().optional(),
        })
        .nullish()
        .catch(undefined),
    })
    .nullish()
    .catch(undefined),
  last_message: z.unknown().optional(),
  users: z.array(avitoChatUserSchema).nullish().catch([]).transform((u) => u ?? []),
});
export type AvitoChat = z.output<typeof avitoChatSchema>;

export const avitoChatListSchema = z.looseObject({
  chats: z.array(z.unknown()).nullish().transform((c) => c ?? []),
});

/** POST /token answer (authorization.json). `refresh_token` only for OAuth grants. */
export const avitoTokenSchema = z.looseObject({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive().default(86_400),
  token_type: optStr,
  refresh_token: optStr,
  scope: optStr,
});
export type AvitoToken = z.output<typeof avitoTokenSchema>;

/** GET /core/v1/accounts/self (user-info.json UserInfoSelf). */
export const avitoSelfSchema = z.looseObject({
  id,
  name: optStr,
  email: optStr,
  phone: optStr,
  profile_url: optStr,
});
export type AvitoSelf = z.output<typeof avitoSelfSchema>;

/** GET /core/v1/items (items.json ItemsInfoWithCategoryAvito). */
export const avitoItemSchema = z.looseObject({
  id,
  title: optStr,
  price: optNum,
  url: optStr,
  status: optStr,
});
export type AvitoItem = z.output<typeof avitoItemSchema>;
export const avitoItemListSchema = z.looseObject({
  meta: z.looseObject({ page: optNum, per_page: optNum }).nullish().catch(undefined),
  resources: z.array(z.unknown()).nullish().transform((r) => r ?? []),
});

/** POST /messenger/v1/accounts/{user_id}/uploadImages: `{ "<image_id>": { "<WxH>": url } }`. */
export const avitoUploadSchema = z.record(z.string(), z.record(z.string(), z.string()).catch({}));

/** GET getVoiceFiles: `{ voices_urls: { voice_id: url } }`. */
export const avitoVoiceFilesSchema = z.looseObject({
  voices_urls: z.record(z.string(), z.string()).nullish().transform((v) => v ?? {}),
});

/** POST /messenger/v1/subscriptions. */
export const avitoSubscriptionsSchema = z.looseObject({
  subscriptions: z
    .array(z.looseObject({ url: z.string(), version: z.union([z.string(), z.number()]).transform(String).optional() }))
    .nullish()
    .transform((s) => s ?? []),
});

/** Webhook v3 delivery (messenger.json, 201 example of postWebhookV3 + WebhookMessage). */
export const avitoWebhookMessageSchema = z.looseObject({
  id,
  chat_id: z.string().min(1),
  user_id: id,
  author_id: optId,
  created: z.number(),
  type: z.string().default('text'),
  chat_type: optStr,
  content: avitoMessageContentSchema,
  item_id: optId,
  published_at: optStr,
  read: optNum,
});
export type AvitoWebhookMessage = z.output<typeof avitoWebhookMessageSchema>;

export const avitoWebhookEventSchema = z.looseObject({
  id: id.optional(),
  version: z.union([z.string(), z.number()]).transform(String).optional(),
  timestamp: optNum,
  payload: z.looseObject({
    type: z.string(),
    value: z.unknown(),
  }),
});
export type AvitoWebhookEvent = z.output<typeof avitoWebhookEventSchema>;

/** Avito's error body `{"error":{"code":N,"message":"…"}}`; other shapes are tolerated. */
export const avitoErrorBodySchema = z.looseObject({
  error: z
    .union([
      z.looseObject({ code: z.unknown().optional(), message: z.string().optional(), fields: z.unknown().optional() }),
      z.string(),
    ])
    .optional(),
  message: z.string().optional(),
  error_description: z.string().optional(),
});
