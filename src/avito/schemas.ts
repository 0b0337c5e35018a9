import { z } from 'zod';

/**
 * Raw Avito shapes, validated leniently: the fields we rely on are checked, everything else
 * is kept as it came. Sources: messenger.json (components.schemas), authorization.json,
 * user-info.json (UserInfoSelf), items.json (ItemsInfoWithCategoryAvito).
 * Ids can exceed 32 bits: every id becomes a string here.
 */

/** A numeric id beyond 2^53 has already lost digits: refused rather than stored rounded (issue 9). */
const safeIntId = z.number().refine((n) => Number.isSafeInteger(n), 'a numeric id must be a whole number below 2^53 (send larger ids as strings)');
const id = z.union([z.string().min(1), safeIntId]).transform((v) => String(v));
const optId = z.union([z.string(), safeIntId]).nullish().transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v)));

/** Epoch seconds Avito can mean: 2000-01-01 up to 2100-01-01. */
export const AVITO_TIME_RANGE_S = { min: 946_684_800, max: 4_102_444_800 } as const;
/**
 * A timestamp later code can turn into a date: `created: 1e308` passed `z.number()` and then broke
 * every date built from it, and a chat `updated` far in the future would carry the poll cursor
 * past every real chat (invariant 8). Out of range is refused at the boundary.
 */
export const avitoTime = z.number().min(AVITO_TIME_RANGE_S.min, 'timestamp before 2000').max(AVITO_TIME_RANGE_S.max, 'timestamp after 2100');
const optTime = avitoTime.nullish().catch(undefined).transform((v) => v ?? undefined);
const optNum = z.number().nullish().catch(undefined).transform((v) => v ?? undefined);
const optStr = z.string().nullish().catch(undefined).transform((v) => v ?? undefined);

/** A link message's preview, as real payloads carry it (not in messenger.json). */
export interface AvitoLinkPreview {
  url?: string;
  domain?: string;
  title?: string;
  description?: string;
  images?: Record<string, string>;
  [other: string]: unknown;
}

/** `MessageContent` (messenger.json): every field optional; appCall/file/video come with `{}`. */
export interface AvitoMessageContent {
  text?: string;
  flow_id?: string;
  image?: { sizes: Record<string, string> };
  voice?: { voice_id?: string };
  /** Real payloads carry `preview {url, domain, title, description, images}`: kept whole. */
  link?: { text?: string; url?: string; preview?: AvitoLinkPreview; [other: string]: unknown };
  item?: { title?: string; price_string?: string; item_url?: string; image_url?: string };
  location?: { lat?: number; lon?: number; text?: string; title?: string; kind?: string };
  call?: { status?: string; target_user_id?: string };
  [other: string]: unknown;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const idStr = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
function pick<T extends Obj>(v: unknown, read: (o: Obj) => T): T | undefined {
  return isObj(v) ? read(v) : undefined;
}
function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
/** `o[k] = v` that keeps a `__proto__` key from JSON as data instead of setting the prototype. */
function setOwn(o: Obj, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}
function defined<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function readPreview(o: Obj): AvitoLinkPreview {
  return defined({ ...o, url: str(o.url), domain: str(o.domain), title: str(o.title), description: str(o.description), images: isObj(o.images) ? strings(o.images) : undefined });
}

/** One known content field, normalised: undefined drops it (a field of the wrong type). */
function readContentField(key: string, v: unknown): unknown {
  switch (key) {
    case 'text':
    case 'flow_id':
      return str(v);
    case 'image':
      return pick(v, (o) => ({ sizes: strings(o.sizes) }));
    case 'voice':
      return pick(v, (o) => defined({ voice_id: str(o.voice_id) }));
    case 'link':
      // Unknown sub-fields of a link pass through like unknown content fields do (fidelity).
      return pick(v, (o) => defined({ ...o, text: str(o.text), url: str(o.url), preview: pick(o.preview, readPreview) }));
    case 'item':
      return pick(v, (o) => defined({ title: str(o.title), price_string: str(o.price_string), item_url: str(o.item_url), image_url: str(o.image_url) }));
    case 'location':
      return pick(v, (o) => defined({ lat: num(o.lat), lon: num(o.lon), text: str(o.text), title: str(o.title), kind: str(o.kind) }));
    case 'call':
      return pick(v, (o) => defined({ status: str(o.status), target_user_id: idStr(o.target_user_id) }));
    default:
      return v;
  }
}

const KNOWN_CONTENT = new Set(['text', 'flow_id', 'image', 'voice', 'link', 'item', 'location', 'call']);

/**
 * Reads a message's content leniently: known fields are type-checked and kept, a field of the
 * wrong type is dropped, unknown fields pass through, in their order. Hand-written rather than a
 * nested schema because it runs for every message of an import (tens of thousands) and must stay
 * cheap: one pass over the keys the message has, and the common `{text}` content is copied as is.
 */
export function readContent(raw: unknown): AvitoMessageContent {
  if (!isObj(raw)) return {};
  const out: AvitoMessageContent = {};
  for (const k in raw) {
    if (!Object.hasOwn(raw, k)) continue;
    const v = KNOWN_CONTENT.has(k) ? readContentField(k, raw[k]) : raw[k];
    if (v !== undefined) setOwn(out, k, v);
  }
  return out;
}

export const avitoMessageContentSchema = z.unknown().transform(readContent);

/**
 * `Messages[]` item (v3). `type` is kept as a string: unknown types are accepted. Real chat lists
 * spell the read flag `isRead` (camelCase) and add `delivered`; both spellings land in `is_read`.
 */
export const avitoMessageSchema = z
  .looseObject({
    id,
    author_id: optId,
    created: avitoTime,
    direction: optStr,
    type: z.string().default('text'),
    content: avitoMessageContentSchema,
    quote: z.unknown().optional(),
    is_read: z.boolean().nullish().catch(undefined),
    isRead: z.boolean().nullish().catch(undefined),
    delivered: z.boolean().nullish().catch(undefined),
    read: optNum,
  })
  .transform(({ isRead, ...m }) => ({ ...m, is_read: m.is_read ?? isRead ?? undefined }));
export type AvitoMessage = z.output<typeof avitoMessageSchema>;

/** An id as the schema's `id` reads it; undefined where the schema would refuse it. */
function idOf(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return undefined;
}

/** An id as the schema's `optId` reads it; `false` where the schema would refuse it (then it decides). */
function optIdOf(v: unknown): string | undefined | false {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return false;
}

const boolOrNull = (v: unknown): boolean | null | undefined => (typeof v === 'boolean' || v === null ? v : undefined);

/**
 * The messages of a page, read without zod: the same result as `avitoMessageSchema` for a
 * message it can read, undefined for one it is not sure of (the schema then decides and names
 * the reason). A page of an import holds 100 of them and an import tens of thousands; the schema
 * cost about a third of the client's CPU there (docs/benchmarks.md). `test/avito-fast-read.test.ts`
 * checks both agree on generated messages.
 */
export function readAvitoMessage(raw: unknown): AvitoMessage | undefined {
  if (!isObj(raw)) return undefined;
  const id = idOf(raw.id);
  if (id === undefined) return undefined;
  const created = raw.created;
  if (typeof created !== 'number' || !(created >= AVITO_TIME_RANGE_S.min && created <= AVITO_TIME_RANGE_S.max)) return undefined;
  const authorId = optIdOf(raw.author_id);
  if (authorId === false) return undefined;
  const rawType = raw.type;
  let type: string;
  if (rawType === undefined) type = 'text';
  else if (typeof rawType === 'string') type = rawType;
  else return undefined;
  // The schema refuses a message without content.
  if (raw.content === undefined) return undefined;
  let out: Record<string, unknown>;
  if (raw.isRead === undefined && !Object.hasOwn(raw, 'isRead')) {
    // Spread copies own keys in order as data (a `__proto__` key from JSON stays data), at a
    // fraction of a key-by-key copy's cost: it runs for every message of an import.
    out = { ...raw };
  } else {
    out = {};
    for (const k in raw) if (Object.hasOwn(raw, k) && k !== 'isRead') setOwn(out, k, raw[k]);
  }
  out.id = id;
  out.author_id = authorId;
  out.created = created;
  out.direction = str(raw.direction);
  out.type = type;
  out.content = readContent(raw.content);
  if ('delivered' in raw) out.delivered = boolOrNull(raw.delivered);
  if ('read' in raw) out.read = num(raw.read);
  const isRead = boolOrNull(raw.is_read);
  const isReadCamel = boolOrNull(raw.isRead);
  out.is_read = isRead ?? isReadCamel ?? undefined;
  return out as AvitoMessage;
}

/**
 * The messages list: documented as a bare array, answered as `{"messages":[...]}` (design.md §2).
 * Both are accepted; `shape` says which arrived so the client can log the surprise once.
 */
export const avitoMessageListSchema = z.union([
  z.array(z.unknown()).transform((messages) => ({ messages, shape: 'array' as const })),
  z.looseObject({ messages: z.array(z.unknown()).nullish() }).transform((o) => ({ messages: o.messages ?? [], shape: 'object' as const })),
]);

/**
 * The messages list without zod, for the 100-message pages of an import: the schema's result for
 * an array or `{messages: [...]}` (the array itself, not a copy), undefined for anything else (the
 * schema then decides). The schema's two array checks cost ≈ 25–35 ms of a 20,000-message import
 * in a fresh process (docs/benchmarks.md, session `ingest2`).
 */
export function readMessageList(data: unknown): z.output<typeof avitoMessageListSchema> | undefined {
  if (Array.isArray(data)) return { messages: data as unknown[], shape: 'array' };
  if (isObj(data) && Array.isArray(data.messages)) return { messages: data.messages as unknown[], shape: 'object' };
  return undefined;
}

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
  created: optTime,
  updated: avitoTime,
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

const optTimeOf = (v: unknown): number | undefined => (typeof v === 'number' && v >= AVITO_TIME_RANGE_S.min && v <= AVITO_TIME_RANGE_S.max ? v : undefined);

/**
 * An object the schema reads as `.nullish().catch(undefined)`: null and undefined as they are, a
 * non-object dropped, an object read by `read` (`false`: unsure, the schema decides).
 */
function nullishObj<T>(v: unknown, read: (o: Obj) => T | false): T | null | undefined | false {
  if (v === null || v === undefined) return v;
  if (!isObj(v)) return undefined;
  return plainKeys(v) ? read(v) : false;
}

/** No own `__proto__` key (JSON can carry one): zod leaves it out, a spread would keep it, so the schema decides. */
const plainKeys = (o: Obj): boolean => !Object.hasOwn(o, '__proto__');

/** `context.value` (the item) as the schema reads it; `false`: unsure, the schema decides. */
function readChatItem(v: Obj): Obj | false {
  const itemId = optIdOf(v.id);
  const userId = optIdOf(v.user_id);
  if (itemId === false || userId === false) return false;
  const out: Obj = { ...v };
  out.id = itemId;
  out.title = str(v.title);
  out.url = str(v.url);
  out.price_string = str(v.price_string);
  out.status_id = num(v.status_id);
  out.user_id = userId;
  return out;
}

/** A chat's `users` as the schema reads them; `false`: unsure (an unreadable user), the schema decides. */
function readChatUsers(v: unknown): Obj[] | false {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) return false;
  const out: Obj[] = [];
  for (const u of v as unknown[]) {
    if (!isObj(u) || !plainKeys(u)) return false;
    const id = idOf(u.id);
    if (id === undefined) return false;
    const user: Obj = { ...u };
    user.id = id;
    user.name = str(u.name);
    const profile = nullishObj(u.public_user_profile, (p) => {
      const userId = optIdOf(p.user_id);
      const itemId = optIdOf(p.item_id);
      return userId === false || itemId === false ? false : { ...p, user_id: userId, item_id: itemId, url: str(p.url) };
    });
    if (profile === false) return false;
    user.public_user_profile = profile;
    out.push(user);
  }
  return out;
}

/**
 * A chat read without zod: the same result as `avitoChatSchema` for a chat it is sure of,
 * undefined otherwise (the schema then decides and names the reason). A pass reads up to 1,100
 * chats a page walk and the schema cost ≈ 25 ms of a 20,000-message import (docs/benchmarks.md);
 * `test/avito-fast-read.test.ts` checks both agree on generated chats.
 */
export function readAvitoChat(raw: unknown): AvitoChat | undefined {
  if (!isObj(raw) || !plainKeys(raw)) return undefined;
  const id = raw.id;
  if (typeof id !== 'string' || id === '') return undefined;
  const updated = raw.updated;
  if (typeof updated !== 'number' || !(updated >= AVITO_TIME_RANGE_S.min && updated <= AVITO_TIME_RANGE_S.max)) return undefined;
  const users = readChatUsers(raw.users);
  if (users === false) return undefined;
  const out: Obj = { ...raw };
  out.created = optTimeOf(raw.created);
  const context = nullishObj(raw.context, (ctx) => {
    const value = nullishObj(ctx.value, readChatItem);
    return value === false ? false : { ...ctx, type: str(ctx.type), value };
  });
  if (context === false) return undefined;
  out.context = context;
  out.users = users;
  return out as AvitoChat;
}

/** The chats list without zod: `{chats: [...]}` (the array itself), undefined for anything else (the schema decides). */
export function readChatList(data: unknown): z.output<typeof avitoChatListSchema> | undefined {
  if (isObj(data) && Array.isArray(data.chats)) return data as z.output<typeof avitoChatListSchema>;
  return undefined;
}

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
  created: avitoTime,
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
