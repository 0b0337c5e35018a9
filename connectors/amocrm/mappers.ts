import { chatWithoutDetails, formatAvitoTime, messageBody, type ChatInfo, type OutgoingMessage } from '../../src/connector-sdk/index.js';
import type { AmoConfig } from './config.js';

/**
 * The one place Avito data becomes amoCRM payloads: lead names and prices, note texts, and the
 * marker that lets a restart find notes that were already created (invariant 2).
 */

/** The marker ends every note this connector writes: `#avito:<message id>`. */
export const MARKER_PREFIX = '#avito:';
const MARKER_RE = /#avito:([A-Za-z0-9_.:~-]+)\s*$/;

export function markerOf(text: string | undefined): string | undefined {
  return text ? MARKER_RE.exec(text)?.[1] : undefined;
}

type Lang = AmoConfig['language'];
const L = {
  ru: {
    buyer: 'Покупатель', seller: 'Продавец (приложение Авито)', bot: 'Чат-бот', reply: 'Ответ менеджера', newChat: 'Новый чат на Авито', item: 'Объявление',
    chat: 'Чат', image: 'Изображение', voice: 'Голосовое сообщение', voiceKept: 'файл сохранён у avito-sync; задайте PUBLIC_URL, чтобы получать ссылку',
    location: 'Геометка', call: 'Звонок', missed: 'пропущен', deleted: 'Сообщение удалено', deletedLater: 'Сообщение удалено на Авито', unsupported: 'Сообщение типа', unsupportedTail: 'API Авито его не передаёт — откройте чат на Авито',
    link: 'Ссылка', profileChat: 'Чат на Авито', notice: 'Уведомление Авито', more: 'Ещё в сообщении',
  },
  en: {
    buyer: 'Buyer', seller: 'Seller (Avito app)', bot: 'Chat-bot', reply: "Manager's reply", newChat: 'New Avito chat', item: 'Item',
    chat: 'Chat', image: 'Image', voice: 'Voice message', voiceKept: 'kept by avito-sync; set PUBLIC_URL to get a link',
    location: 'Location', call: 'Call', missed: 'missed', deleted: 'Message deleted', deletedLater: 'Message deleted on Avito', unsupported: 'Message of type', unsupportedTail: "Avito's API does not pass it on — open the chat on Avito",
    link: 'Link', profileChat: 'Avito chat', notice: 'Avito notice', more: 'Also in the message',
  },
} as const;

/** "300 000 ₽" → 300000; null when there is no number. amoCRM prices are int32. */
export function priceOf(priceString: string | null): number | null {
  if (!priceString) return null;
  const digits = priceString.replace(/[^\d]/g, '');
  if (!digits) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) && n <= 2_147_483_647 ? n : null;
}

export function leadName(chat: ChatInfo, lang: Lang): string {
  if (chat.item.title) return chat.item.title.slice(0, 250);
  return `${L[lang].profileChat}: ${chat.buyer.name ?? chat.buyer.id ?? chat.chatId}`.slice(0, 250);
}

export function contactName(chat: ChatInfo): string {
  return (chat.buyer.name?.trim() || `Avito ${chat.buyer.id ?? chat.chatId}`).slice(0, 250);
}

/** The names `leadName` gives this chat's lead when the chat's details are missing. */
export function placeholderLeadNames(chat: ChatInfo, lang: Lang): Set<string> {
  return new Set(chatWithoutDetails(chat).map((c) => leadName(c, lang)));
}

/** The names `contactName` gives this chat's buyer when the chat's details are missing. */
export function placeholderContactNames(chat: ChatInfo): Set<string> {
  return new Set(chatWithoutDetails(chat).map((c) => contactName(c)));
}

/** Content fields each type is shown by; anything else in a message's content is listed after the body. */
const SHOWN: Readonly<Record<string, readonly string[]>> = {
  text: ['text'], image: ['image'], voice: ['voice'], link: ['link', 'text'], item: ['item', 'text'], location: ['location', 'text'],
  call: ['call'], deleted: [], system: ['text', 'flow_id'],
};
const MAX_EXTRA = 500;

/** Fields of a message's content that its type's rendering does not show (Avito adds fields over time). */
export function extraContent(m: OutgoingMessage, lang: Lang): string | undefined {
  const shown = SHOWN[m.type];
  if (!shown) return undefined; // an unknown type's body already says what it is
  const extra = Object.entries(m.content).filter(([k, v]) => !shown.includes(k) && v !== null && v !== undefined && !(typeof v === 'object' && Object.keys(v as object).length === 0));
  if (extra.length === 0) return undefined;
  const text = extra.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ');
  return `${L[lang].more}: ${text.length > MAX_EXTRA ? `${text.slice(0, MAX_EXTRA)}…` : text}`;
}

/** One note's text: who and when, the body, the chat's context on a new lead's first note, the marker. */
export function noteText(m: OutgoingMessage, chat: { item: ChatInfo['item']; chatUrl: string } | undefined, config: Pick<AmoConfig, 'language' | 'timeZone'>): string {
  const t = L[config.language];
  const who =
    m.author.kind === 'buyer' ? `${t.buyer}${m.author.name ? ` ${m.author.name}` : ''}`
    : m.author.kind === 'seller' ? t.seller
    : m.author.kind === 'bot' ? `${t.bot}: ${m.author.name}`
    : m.author.kind === 'notice' ? t.notice
    : t.reply;
  const lines: string[] = [];
  if (m.first && chat) {
    lines.push(`${t.newChat}${chat.item.title ? `: «${chat.item.title}»` : ''}${chat.item.price ? `, ${chat.item.price}` : ''}`);
    if (chat.item.url) lines.push(`${t.item}: ${chat.item.url}`);
    lines.push(`${t.chat}: ${chat.chatUrl}`, '');
  }
  lines.push(`${who} · ${formatAvitoTime(m.created, config.timeZone)}`);
  lines.push(messageBody(m, config.language));
  const extra = extraContent(m, config.language);
  if (extra) lines.push(extra);
  lines.push(`${MARKER_PREFIX}${m.messageId}`);
  return lines.join('\n');
}
