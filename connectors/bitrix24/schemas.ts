import { z } from 'zod';

/**
 * Raw Bitrix24 REST shapes (apidocs.bitrix24.com; b24restdocs `_includes/system-errors.md`,
 * `settings/how-to-call-rest-api/batch.md`, `api-reference/crm/*`), validated leniently: the
 * fields this connector relies on are checked, the rest pass through. Bitrix24 sends ids as
 * strings ("12") in most answers and as numbers in some: both are accepted.
 */

const id = z.coerce.number().int();

/** `{error, error_description}` on any failed call. */
export const b24ErrorSchema = z.looseObject({ error: z.string(), error_description: z.string().optional() });
export type B24Error = z.output<typeof b24ErrorSchema>;

/** `{result, time, total?, next?}`: every successful call. */
export const b24EnvelopeSchema = z.looseObject({
  result: z.unknown(),
  total: z.coerce.number().optional(),
  next: z.coerce.number().optional(),
  time: z.looseObject({ operating: z.number().optional(), operating_reset_at: z.number().optional() }).optional(),
});
export type B24Envelope = z.output<typeof b24EnvelopeSchema>;

/**
 * `batch`'s `result`: per command key its result, error, list total and next page. An empty
 * PHP array arrives as `[]` instead of `{}`.
 */
const keyed = <T extends z.ZodType>(v: T) => z.union([z.record(z.string(), v), z.array(z.unknown()).transform(() => ({} as Record<string, z.output<T>>))]);
export const b24BatchResultSchema = z.looseObject({
  result: keyed(z.unknown()).default({}),
  result_error: keyed(b24ErrorSchema).default({}),
  result_total: keyed(z.coerce.number()).default({}),
  result_next: keyed(z.coerce.number()).default({}),
});
export type B24BatchResult = z.output<typeof b24BatchResultSchema>;

/** `crm.lead.list` / `crm.lead.get` (select ID, STATUS_ID, STATUS_SEMANTIC_ID, CONTACT_ID, ORIGIN_ID). */
export const b24LeadSchema = z.looseObject({
  ID: id,
  TITLE: z.string().nullish(),
  /** The lead's own contact name (a lead carries one; `crm.lead.add` NAME). */
  NAME: z.string().nullish(),
  STATUS_ID: z.string().nullish(),
  /** P in progress, S success (converted), F failure (junk). */
  STATUS_SEMANTIC_ID: z.string().nullish(),
  CONTACT_ID: id.nullish(),
  ORIGINATOR_ID: z.string().nullish(),
  ORIGIN_ID: z.string().nullish(),
});
export type B24Lead = z.output<typeof b24LeadSchema>;

/** `crm.deal.list` / `crm.deal.get`. */
export const b24DealSchema = z.looseObject({
  ID: id,
  TITLE: z.string().nullish(),
  STAGE_ID: z.string().nullish(),
  /** P in progress, S won, F lost. */
  STAGE_SEMANTIC_ID: z.string().nullish(),
  CLOSED: z.string().nullish(),
  CONTACT_ID: id.nullish(),
  ORIGINATOR_ID: z.string().nullish(),
  ORIGIN_ID: z.string().nullish(),
});
export type B24Deal = z.output<typeof b24DealSchema>;

export const b24ContactSchema = z.looseObject({ ID: id, NAME: z.string().nullish(), ORIGIN_ID: z.string().nullish() });
export type B24Contact = z.output<typeof b24ContactSchema>;

/** `crm.timeline.comment.get` / `.list`: CREATED is an ISO date with offset. */
export const b24CommentSchema = z.looseObject({
  ID: id,
  ENTITY_ID: id,
  ENTITY_TYPE: z.string(),
  AUTHOR_ID: id.nullish(),
  CREATED: z.string().nullish(),
  COMMENT: z.string().nullish(),
});
export type B24Comment = z.output<typeof b24CommentSchema>;

export const b24UserSchema = z.looseObject({ ID: id, ACTIVE: z.union([z.boolean(), z.string()]).nullish(), NAME: z.string().nullish(), LAST_NAME: z.string().nullish() });
export type B24User = z.output<typeof b24UserSchema>;

/** `*.add` answers the new id. */
export const b24IdSchema = id;

/**
 * The outbound webhook's event (application/x-www-form-urlencoded, PHP-style keys):
 * `event`, `event_handler_id`, `data[FIELDS][ID]`, `ts`, `auth[domain]`, `auth[member_id]`,
 * `auth[application_token]`, … (b24restdocs `api-reference/events/index.md`).
 */
export const b24EventSchema = z.object({
  event: z.string().min(1),
  commentId: z.coerce.number().int().positive().optional(),
  domain: z.string().optional(),
  memberId: z.string().optional(),
  applicationToken: z.string().optional(),
});
export type B24Event = z.output<typeof b24EventSchema>;
