import { largestImage, messageBody, type ChatInfo, type IncomingReply, type OutgoingMessage } from '../../../src/connector-sdk/index.js';
import type { AmoConfig } from '../config.js';
import type { AmojoMessage, AmojoSendPayload, AmojoUser } from './amojo-client.js';
import type { AmojoHook } from './schemas.js';

/**
 * Avito messages as amoCRM chat messages (chat-api-reference § "Отправка, редактирование или
 * импорт сообщения"), and manager answers as replies to send to Avito.
 */

/** The buyer as the chat's client: the id amoCRM keeps for them is the Avito user id. */
export function buyerUser(chat: ChatInfo): AmojoUser {
  const id = chat.buyer.id ?? `chat:${chat.chatId}`;
  return {
    id,
    name: (chat.buyer.name?.trim() || `Avito ${chat.buyer.id ?? chat.chatId}`).slice(0, 250),
    ...(chat.buyer.url ? { profile_link: chat.buyer.url } : chat.buyer.id ? { profile_link: `https://www.avito.ru/user/${chat.buyer.id}/profile` } : {}),
  };
}

/** The seller writing in the Avito app: imported as the channel bot (`ref_id`), never as the client. */
export function sellerUser(accountId: string, botId: string, lang: 'ru' | 'en'): AmojoUser {
  return { id: `avito-seller:${accountId}`, ref_id: botId, name: lang === 'ru' ? 'Продавец (приложение Авито)' : 'Seller (Avito app)' };
}

/** The amojo message for an Avito message: images, voice and locations as their own types. */
export function amojoMessage(m: OutgoingMessage, lang: 'ru' | 'en', sizeOf: (url: string) => number | undefined): AmojoMessage {
  const c = m.content as Record<string, unknown>;
  const obj = (k: string) => (typeof c[k] === 'object' && c[k] !== null ? (c[k] as Record<string, unknown>) : {});
  if (m.type === 'image') {
    const url = largestImage(obj('image').sizes);
    // file_name and file_size are required for pictures; the size is the link's Content-Length.
    if (url) return { type: 'picture', media: url, file_name: fileName(url, 'image.jpg'), file_size: sizeOf(url) ?? 0 };
  }
  if (m.type === 'voice' && m.voiceUrl) return { type: 'voice', media: m.voiceUrl, file_name: 'voice.m4a', file_size: sizeOf(m.voiceUrl) ?? 0 };
  if (m.type === 'location') {
    const l = obj('location');
    if (typeof l.lat === 'number' && typeof l.lon === 'number') {
      const text = typeof l.text === 'string' ? l.text : typeof l.title === 'string' ? l.title : undefined;
      return { type: 'location', location: { lat: l.lat, lon: l.lon }, ...(text ? { text } : {}) };
    }
  }
  let text = messageBody(m, lang);
  if (m.author.kind === 'bot') text = `[${m.author.name}] ${text}`;
  return { type: 'text', text: text || '—' };
}

function fileName(url: string, fallback: string): string {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).at(-1);
    return last && /\.[a-z0-9]{2,5}$/i.test(last) ? last : fallback;
  } catch {
    return fallback;
  }
}

/**
 * The `new_message` payload: `msgid` = the Avito message id (stable across retries, so amojo
 * keeps one copy), the buyer as sender, the seller (as the channel bot) to the buyer. `silent`
 * for the seller's own messages, chat-bots and history.
 */
export function sendPayload(d: { message: OutgoingMessage; chat: ChatInfo }, o: { accountId: string; botId: string | undefined; lang: 'ru' | 'en'; history: boolean; sizeOf: (url: string) => number | undefined }): AmojoSendPayload | undefined {
  const m = d.message;
  const buyer = buyerUser(d.chat);
  const own = m.author.kind === 'seller' || m.author.kind === 'reply';
  if (own && !o.botId) return undefined;
  return {
    timestamp: m.created,
    msec_timestamp: m.created * 1000,
    msgid: m.messageId,
    conversation_id: d.chat.chatId,
    silent: own || m.author.kind === 'bot' || o.history,
    ...(own ? { sender: sellerUser(o.accountId, o.botId!, o.lang), receiver: buyer } : { sender: buyer }),
    message: amojoMessage(m, o.lang, o.sizeOf),
  };
}

/** A message deleted on Avito after delivery: the chat's copy is edited (no new lead, no notification). */
export function deletedEdit(m: OutgoingMessage, lang: 'ru' | 'en'): { msgid: string; text: string } {
  return { msgid: m.messageId.replace(/:deleted$/, ''), text: lang === 'ru' ? '(сообщение удалено на Авито)' : '(message deleted on Avito)' };
}

/**
 * A manager's answer as a reply to send to Avito: texts as they are (the core splits at 1,000),
 * pictures as images; other files go as their link (Avito takes only text and images).
 */
export function replyFromAmojo(msg: { id: string; type: string; text?: string | null | undefined; media?: string | null | undefined; file_name?: string | null | undefined }, chatId: string, createdAt: number): IncomingReply {
  const text = msg.text?.trim() ?? '';
  const attachments: IncomingReply['attachments'] = [];
  let body = text;
  if (msg.media && msg.type === 'picture') attachments.push({ url: msg.media, name: msg.file_name || 'image.jpg', mime: mimeOf(msg.file_name || msg.media) });
  else if (msg.media) body = [text, `${msg.file_name ?? msg.type}: ${msg.media}`].filter(Boolean).join('\n');
  return { remoteId: msg.id, conversationId: chatId, chatId, text: body, attachments, createdAt };
}

function mimeOf(name: string): string {
  const ext = /\.([a-z0-9]+)(?:\?|$)/i.exec(name)?.[1]?.toLowerCase();
  return ext === 'png' ? 'image/png' : ext === 'gif' ? 'image/gif' : ext === 'webp' ? 'image/webp' : 'image/jpeg';
}

/** The reply in an outgoing hook, if it is a manager's message (typing and reactions are not). */
export function replyFromHook(hook: AmojoHook): IncomingReply | undefined {
  const m = hook.message;
  const chatId = m?.conversation.client_id;
  if (!m || !chatId) return undefined;
  const at = m.timestamp ?? (m.msec_timestamp ? Math.floor(m.msec_timestamp / 1000) : hook.time ?? Math.floor(Date.now() / 1000));
  return replyFromAmojo(m.message, chatId, at);
}

export type ChatsLang = AmoConfig['language'];
