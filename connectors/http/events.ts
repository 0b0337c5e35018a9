import { createHash } from 'node:crypto';
import type { ChatInfo, OutgoingMessage, ReplyOutcome } from '../../src/connector-sdk/index.js';

/** The body of one event (design.md §8.2): `{type, timestamp, data}`. */
export interface HttpEvent {
  type: 'message.created' | 'reply.sent' | 'reply.failed' | 'ping';
  /** ISO 8601: when it happened (the message's time for `message.created`). */
  timestamp: string;
  data: Record<string, unknown>;
}

/**
 * `webhook-id`: the same for an event across every retry and restart (receivers dedupe by it),
 * derived from the account and the event's own id. Base64url, so never a `.` (the spec forbids it).
 */
export function eventId(prefix: 'msg' | 'rep' | 'ping', ...parts: string[]): string {
  return `${prefix}_${createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 32)}`;
}

/** `message.created`: the chat (item, buyer) and the message as the ledger holds them. */
export function messageCreated(accountId: string, chat: ChatInfo, m: OutgoingMessage): HttpEvent {
  const author = m.author.kind === 'buyer' ? { kind: 'buyer', name: m.author.name } : m.author.kind === 'bot' ? { kind: 'bot', name: m.author.name } : { kind: m.author.kind, name: null };
  return {
    type: 'message.created',
    timestamp: new Date(m.created * 1000).toISOString(),
    data: {
      account_id: accountId,
      chat: {
        id: chat.chatId,
        type: chat.chatType,
        url: chat.chatUrl,
        item: { id: chat.item.id, title: chat.item.title, url: chat.item.url, price: chat.item.price },
        buyer: { id: chat.buyer.id, name: chat.buyer.name },
      },
      message: { id: m.messageId, created: m.created, type: m.type, author, text: m.text, content: m.content },
    },
  };
}

/** `reply.sent` / `reply.failed`: a reply's fate, without its text. */
export function replyOutcome(accountId: string, chatId: string, replyId: string, outcome: ReplyOutcome, now = new Date()): HttpEvent {
  return outcome.sent
    ? { type: 'reply.sent', timestamp: now.toISOString(), data: { account_id: accountId, chat_id: chatId, reply_id: replyId, parts: outcome.parts } }
    : { type: 'reply.failed', timestamp: now.toISOString(), data: { account_id: accountId, chat_id: chatId, reply_id: replyId, reason: outcome.reason } };
}
