import { chatWithoutDetails, formatAvitoTime, messageBody, type ChatInfo, type OutgoingMessage } from '../../src/connector-sdk/index.js';
import type { B24Config } from './config.js';

/**
 * The one place Avito data becomes Bitrix24 payloads: lead/deal titles and prices, contact names,
 * comment texts, and the marker that lets a restart find comments already written (invariant 2).
 */

/** `ORIGINATOR_ID` of everything this connector creates ("identifier of the data source"). */
export const ORIGINATOR = 'avito';

/** The marker ends every comment this connector writes: `#avito:<message id>`. */
export const MARKER_PREFIX = '#avito:';
const MARKER_RE = /#avito:([A-Za-z0-9_.:~-]+)\s*$/;

export function markerOf(text: string | null | undefined): string | undefined {
  return text ? MARKER_RE.exec(text)?.[1] : undefined;
}

type Lang = B24Config['language'];
const L = {
  ru: {
    buyer: 'Покупатель', seller: 'Продавец (приложение Авито)', bot: 'Чат-бот', reply: 'Ответ менеджера', newChat: 'Новый чат на Авито', item: 'Объявление',
    chat: 'Чат', image: 'Изображение', voice: 'Голосовое сообщение', voiceKept: 'файл сохранён у avito-sync; задайте PUBLIC_URL, чтобы получать ссылку',
    location: 'Геометка', call: 'Звонок', missed: 'пропущен', deleted: 'Сообщение удалено', deletedLater: 'Сообщение удалено на Авито', unsupported: 'Сообщение типа', unsupportedTail: 'API Авито его не передаёт — откройте чат на Авито',
    link: 'Ссылка', profileChat: 'Чат на Авито', notice: 'Уведомление Авито', sent: 'Ответ отправлен покупателю на Авито', messages: 'сообщения', notSent: 'Ответ НЕ отправлен на Авито',
  },
  en: {
    buyer: 'Buyer', seller: 'Seller (Avito app)', bot: 'Chat-bot', reply: "Manager's reply", newChat: 'New Avito chat', item: 'Item',
    chat: 'Chat', image: 'Image', voice: 'Voice message', voiceKept: 'kept by avito-sync; set PUBLIC_URL to get a link',
    location: 'Location', call: 'Call', missed: 'missed', deleted: 'Message deleted', deletedLater: 'Message deleted on Avito', unsupported: 'Message of type', unsupportedTail: "Avito's API does not pass it on — open the chat on Avito",
    link: 'Link', profileChat: 'Avito chat', notice: 'Avito notice', sent: 'Reply sent to the buyer on Avito', messages: 'messages', notSent: 'Reply NOT sent to Avito',
  },
} as const;

/** "300 000 ₽" → 300000; null when there is no number. */
export function priceOf(priceString: string | null): number | null {
  if (!priceString) return null;
  const digits = priceString.replace(/[^\d]/g, '');
  if (!digits) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}

/** The lead's or deal's title: the item, or for a profile chat the buyer. */
export function titleOf(chat: ChatInfo, lang: Lang): string {
  if (chat.item.title) return chat.item.title.slice(0, 255);
  return `${L[lang].profileChat}: ${chat.buyer.name ?? chat.buyer.id ?? chat.chatId}`.slice(0, 255);
}

export function contactName(chat: ChatInfo): string {
  return (chat.buyer.name?.trim() || `Avito ${chat.buyer.id ?? chat.chatId}`).slice(0, 100);
}

/** The titles `titleOf` gives this chat's lead (deal) when the chat's details are missing. */
export function placeholderTitles(chat: ChatInfo, lang: Lang): Set<string> {
  return new Set(chatWithoutDetails(chat).map((c) => titleOf(c, lang)));
}

/** The names `contactName` gives this chat's buyer when the chat's details are missing. */
export function placeholderNames(chat: ChatInfo): Set<string> {
  return new Set(chatWithoutDetails(chat).map((c) => contactName(c)));
}

/** The contact's `ORIGIN_ID`: the buyer's Avito id (a chat without one gets a contact of its own). */
export function buyerKey(chat: ChatInfo): string {
  return chat.buyer.id ? `buyer:${chat.buyer.id}` : `chat:${chat.chatId}`;
}

/** The lead's or deal's `COMMENTS`: where the chat and the item are on Avito. */
export function entityComments(chat: ChatInfo, lang: Lang): string {
  const t = L[lang];
  return [`${t.chat}: ${chat.chatUrl}`, chat.item.url ? `${t.item}: ${chat.item.url}` : undefined].filter(Boolean).join('\n');
}

/** One comment's text: who and when, the body, the chat's context on a new lead's first comment, the marker. */
export function commentText(m: OutgoingMessage, chat: Pick<ChatInfo, 'item' | 'chatUrl'>, config: Pick<B24Config, 'language' | 'timeZone'>): string {
  const t = L[config.language];
  const who =
    m.author.kind === 'buyer' ? `${t.buyer}${m.author.name ? ` ${m.author.name}` : ''}`
    : m.author.kind === 'seller' ? t.seller
    : m.author.kind === 'bot' ? `${t.bot}: ${m.author.name}`
    : m.author.kind === 'notice' ? t.notice
    : t.reply;
  const lines: string[] = [];
  if (m.first) {
    lines.push(`${t.newChat}${chat.item.title ? `: «${chat.item.title}»` : ''}${chat.item.price ? `, ${chat.item.price}` : ''}`);
    if (chat.item.url) lines.push(`${t.item}: ${chat.item.url}`);
    lines.push(`${t.chat}: ${chat.chatUrl}`, '');
  }
  lines.push(`${who} · ${formatAvitoTime(m.created, config.timeZone)}`);
  lines.push(messageBody(m, config.language));
  lines.push(`${MARKER_PREFIX}${m.messageId}`);
  return lines.join('\n');
}

/** A reply's fate, briefly, never its text. */
export function fateText(outcome: { sent: true; parts: number } | { sent: false; reason: string }, lang: Lang): string {
  const t = L[lang];
  return outcome.sent ? `${t.sent}${outcome.parts > 1 ? ` (${outcome.parts} ${t.messages})` : ''}.` : `${t.notSent}: ${outcome.reason}`;
}
