import { replyFromText, type IncomingReply, type WebhookRequest } from '../../src/connector-sdk/index.js';
import { markerOf } from './mappers.js';
import { parseQuery, type Parsed } from './query.js';
import { b24EventSchema, type B24Comment, type B24Event } from './schemas.js';

/** The event that says a timeline comment was written (its id only). */
export const COMMENT_ADD_EVENT = 'ONCRMTIMELINECOMMENTADD';

/**
 * A timeline comment on a lead (deal) is a reply when its text starts with the prefix. Comments
 * this connector wrote carry its marker and are never replies. A line holding only an image link
 * becomes an image sent after the text.
 */
export function replyFromComment(c: B24Comment, prefix: string, entity: 'lead' | 'deal'): IncomingReply | undefined {
  if (c.ENTITY_TYPE.toLowerCase() !== entity) return undefined;
  const raw = c.COMMENT ?? '';
  if (markerOf(raw)) return undefined;
  const reply = replyFromText(raw, prefix);
  if (!reply) return undefined;
  const created = c.CREATED ? Date.parse(c.CREATED) : Number.NaN;
  return { remoteId: String(c.ID), conversationId: String(c.ENTITY_ID), ...reply, createdAt: Number.isFinite(created) ? Math.floor(created / 1000) : 0 };
}

const str = (v: Parsed | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: Parsed | undefined): Record<string, Parsed> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {});

/**
 * An outbound webhook's call: `application/x-www-form-urlencoded` with PHP-style keys
 * (`data[FIELDS][ID]`, `auth[application_token]`); JSON is read too. Undefined when it is neither.
 */
export function parseEvent(req: WebhookRequest): B24Event | undefined {
  const text = req.body.toString('utf8');
  let root: Record<string, Parsed>;
  if (req.contentType.includes('json') || text.trimStart().startsWith('{')) {
    try {
      root = JSON.parse(text) as Record<string, Parsed>;
    } catch {
      return undefined;
    }
  } else root = parseQuery(text);
  const data = obj(root.data);
  const fields = obj(data.FIELDS ?? data.fields);
  const auth = obj(root.auth);
  const parsed = b24EventSchema.safeParse({
    event: str(root.event) ?? '',
    commentId: str(fields.ID) ?? (typeof fields.ID === 'number' ? fields.ID : undefined),
    domain: str(auth.domain)?.toLowerCase(),
    memberId: str(auth.member_id),
    applicationToken: str(auth.application_token),
  });
  return parsed.success ? parsed.data : undefined;
}
