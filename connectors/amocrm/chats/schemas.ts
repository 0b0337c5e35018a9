import { z } from 'zod';

/**
 * Raw amoCRM Chats API (amojo) shapes, named after the provider, validated leniently: the
 * fields the chats mode relies on are checked, the rest pass through. Source:
 * https://www.amocrm.ru/developers/content/chats/chat-api-reference and chat-webhooks.
 */

/** `POST /v2/origin/custom/{channel_id}/connect` → 200. */
export const amojoConnectSchema = z.looseObject({
  account_id: z.string().optional(),
  scope_id: z.string().min(1),
  title: z.string().optional(),
  hook_api_version: z.string().optional(),
});

/**
 * `POST /v2/origin/custom/{scope_id}` → 200 "accepted for processing". The reference gives
 * `{new_message: {…, msgid}}`, the step-by-step only `{msgid, ref_id}`: both are read.
 */
export const amojoSendResultSchema = z.looseObject({
  new_message: z.looseObject({ msgid: z.string().optional(), ref_id: z.string().optional(), conversation_id: z.string().optional() }).optional(),
  edit_message: z.looseObject({ msgid: z.string().optional() }).optional(),
  msgid: z.string().optional(),
  ref_id: z.string().optional(),
});

/** `POST /v2/origin/custom/{scope_id}/chats` → the amojo chat id (idempotent per conversation_id). */
export const amojoChatSchema = z.looseObject({ id: z.string().min(1), user: z.looseObject({ id: z.string().optional(), client_id: z.string().nullish() }).optional() });

const amojoParty = z.looseObject({ id: z.string().optional(), client_id: z.string().nullish(), ref_id: z.string().nullish(), name: z.string().nullish() });

/** A message as the history call and the outgoing hook carry it. */
export const amojoMessageBodySchema = z.looseObject({
  id: z.string().optional(),
  client_id: z.string().nullish(),
  type: z.string().default('text'),
  text: z.string().nullish(),
  media: z.string().nullish(),
  thumbnail: z.string().nullish(),
  file_name: z.string().nullish(),
  file_size: z.coerce.number().nullish(),
  media_group_id: z.string().nullish(),
});

/** `GET /v2/origin/custom/{scope_id}/chats/{chat_id}/history` → 200 (204 when empty). */
export const amojoHistorySchema = z.looseObject({
  messages: z.array(z.looseObject({
    timestamp: z.coerce.number().optional(),
    msec_timestamp: z.coerce.number().optional(),
    sender: amojoParty.optional(),
    receiver: amojoParty.nullish(),
    message: amojoMessageBodySchema,
  })).default([]),
});
export type AmojoHistory = z.output<typeof amojoHistorySchema>;

/** The outgoing hook (a manager wrote in amoCRM), hook_api_version v2. */
export const amojoHookSchema = z.looseObject({
  account_id: z.string().optional(),
  time: z.coerce.number().optional(),
  message: z.looseObject({
    receiver: amojoParty.optional(),
    sender: amojoParty.optional(),
    conversation: z.looseObject({ id: z.string().optional(), client_id: z.string().nullish() }),
    timestamp: z.coerce.number().optional(),
    msec_timestamp: z.coerce.number().optional(),
    message: amojoMessageBodySchema.extend({ id: z.string().min(1) }),
  }).optional(),
  action: z.looseObject({ typing: z.unknown().optional(), reaction: z.unknown().optional() }).optional(),
});
export type AmojoHook = z.output<typeof amojoHookSchema>;

/** REST: `GET /api/v4/account?with=amojo_id`. */
export const amoAccountAmojoSchema = z.looseObject({ id: z.coerce.number().optional(), name: z.string().optional(), amojo_id: z.string().optional() });

/** REST: `GET /api/v4/leads/unsorted?filter[category][]=chats` (204 when empty). */
export const amoUnsortedListSchema = z.looseObject({
  _links: z.looseObject({ next: z.unknown().optional() }).optional(),
  _embedded: z.looseObject({
    unsorted: z.array(z.looseObject({
      uid: z.string(),
      category: z.string().optional(),
      pipeline_id: z.coerce.number().optional(),
      created_at: z.coerce.number().optional(),
      metadata: z.looseObject({ origin: z.looseObject({ chat_id: z.string().nullish() }).nullish() }).nullish(),
      _embedded: z.looseObject({
        leads: z.array(z.looseObject({ id: z.coerce.number() })).optional(),
        contacts: z.array(z.looseObject({ id: z.coerce.number() })).optional(),
      }).optional(),
    })),
  }),
});

/** REST: `POST /api/v4/leads/unsorted/{uid}/accept`. */
export const amoUnsortedAcceptSchema = z.looseObject({
  uid: z.string().optional(),
  _embedded: z.looseObject({ leads: z.array(z.looseObject({ id: z.coerce.number() })).optional() }).optional(),
});

/** REST: leads by id, enough to tell open from won/lost. */
export const amoLeadStatusListSchema = z.looseObject({
  _embedded: z.looseObject({ leads: z.array(z.looseObject({ id: z.coerce.number(), status_id: z.coerce.number().optional(), is_deleted: z.boolean().optional() })) }),
});

export const anySchema = z.unknown();
