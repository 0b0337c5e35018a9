import type { NewChat, NewMessage } from '../ledger/tables.js';
import { botName } from './bots.js';
import type { AvitoChat, AvitoMessage, AvitoMessageContent, AvitoWebhookMessage } from './schemas.js';

/**
 * The one place raw Avito shapes become ledger rows.
 */

export function chatTypeOf(chatId: string, contextType?: string): string | null {
  const m = /^(u2i|u2u|a2u)-/.exec(chatId);
  if (m) return m[1]!;
  if (contextType === 'item') return 'u2i';
  return null;
}

export function chatFromAvito(accountId: string, ownUserId: string, chat: AvitoChat, now = Date.now()): NewChat {
  const item = chat.context?.value ?? undefined;
  const buyer = chat.users.find((u) => u.id !== ownUserId) ?? null;
  return {
    account_id: accountId,
    chat_id: chat.id,
    chat_type: chatTypeOf(chat.id, chat.context?.type),
    item_id: item?.id ?? null,
    item_title: item?.title ?? null,
    item_url: item?.url ?? null,
    item_price: item?.price_string ?? null,
    buyer_id: buyer?.id ?? null,
    buyer_name: buyer?.name ?? null,
    buyer_url: buyer?.public_user_profile?.url ?? null,
    created: chat.created ?? null,
    updated: chat.updated,
    synced_updated: null,
    needs_fetch: 0,
    raw: JSON.stringify(chat),
    fetched_at: now,
  };
}

/** The readable text of a message, for the ledger's `text` column and for CRM notes. */
export function plainText(type: string, content: AvitoMessageContent): string | null {
  if (content.text) return content.text;
  if (content.link?.text || content.link?.url || content.link?.preview?.title) return content.link.text ?? content.link.url ?? content.link.preview?.title ?? null;
  if (content.item?.title) return content.item.title;
  if (content.location?.text || content.location?.title) return content.location.text ?? content.location.title ?? null;
  if (type === 'deleted') return null;
  return null;
}

interface MessageLike {
  id: string;
  author_id?: string | undefined;
  created: number;
  type: string;
  content: AvitoMessageContent;
}

function messageRow(
  accountId: string,
  ownUserId: string,
  chatId: string,
  m: MessageLike,
  extra: { direction: string | null; quote: unknown; source: string },
  now: number,
): NewMessage {
  const flowId = m.content.flow_id ?? null;
  const isOwn = m.author_id !== undefined ? m.author_id === ownUserId : extra.direction === 'out';
  return {
    account_id: accountId,
    message_id: m.id,
    chat_id: chatId,
    author_id: m.author_id ?? null,
    direction: extra.direction ?? (isOwn ? 'out' : 'in'),
    type: m.type,
    created: m.created,
    text: plainText(m.type, m.content),
    content: JSON.stringify(m.content),
    quote: extra.quote === undefined || extra.quote === null ? null : JSON.stringify(extra.quote),
    flow_id: flowId,
    // A platform notice (`system`, author 0, no flow_id: "[Системное сообщение] …") is Avito's
    // own, not a chat-bot's; `isAvitoNotice` tells them apart from the row.
    bot_name: flowId ? botName(flowId) : null,
    is_own: isOwn ? 1 : 0,
    voice_id: m.type === 'voice' ? m.content.voice?.voice_id ?? null : null,
    source: extra.source,
    inserted_at: now,
  };
}

/**
 * A platform notice from Avito itself (real payloads: `type: system`, `author_id: 0`, no
 * `flow_id`, text "[Системное сообщение] …"), as opposed to a chat-bot's message (`flow_id`).
 */
export function isAvitoNotice(row: { type: string; flow_id: string | null }): boolean {
  return row.type === 'system' && !row.flow_id;
}

export function messageFromAvito(accountId: string, ownUserId: string, chatId: string, m: AvitoMessage, source = 'poll', now = Date.now()): NewMessage {
  return messageRow(accountId, ownUserId, chatId, m, { direction: m.direction ?? null, quote: m.quote, source }, now);
}

export function messageFromWebhook(accountId: string, ownUserId: string, m: AvitoWebhookMessage, now = Date.now()): NewMessage {
  return messageRow(accountId, ownUserId, m.chat_id, m, { direction: null, quote: undefined, source: 'webhook' }, now);
}
