import type { IncomingReply, OutgoingMessage } from './contract.js';

/**
 * Helpers for showing Avito messages in a CRM, shared by connectors (exported from
 * `avito-crm-sync/connector`).
 */

/** The words `messageBody` uses, per language. */
const BODY_LABELS = {
  ru: {
    item: 'Объявление', image: 'Изображение', voice: 'Голосовое сообщение', voiceKept: 'файл сохранён у avito-sync; задайте PUBLIC_URL, чтобы получать ссылку',
    location: 'Геометка', call: 'Звонок', missed: 'пропущен', deleted: 'Сообщение удалено', deletedLater: 'Сообщение удалено на Авито', unsupported: 'Сообщение типа', unsupportedTail: 'API Авито его не передаёт — откройте чат на Авито',
    link: 'Ссылка',
  },
  en: {
    item: 'Item', image: 'Image', voice: 'Voice message', voiceKept: 'kept by avito-sync; set PUBLIC_URL to get a link',
    location: 'Location', call: 'Call', missed: 'missed', deleted: 'Message deleted', deletedLater: 'Message deleted on Avito', unsupported: 'Message of type', unsupportedTail: "Avito's API does not pass it on — open the chat on Avito",
    link: 'Link',
  },
} as const;

/**
 * One formatter per time zone, kept: a formatter holds ICU memory outside the JS heap that is
 * freed only when the GC collects it, and the GC does not see its size — one per note grew a
 * 100,000-message backfill by some 600 MB (docs/benchmarks.md). null: the zone is unknown.
 */
const timeFormats = new Map<string, Intl.DateTimeFormat | null>();

function timeFormat(timeZone: string): Intl.DateTimeFormat | null {
  let f = timeFormats.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('ru-RU', { timeZone, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit' });
    } catch {
      f = null;
    }
    timeFormats.set(timeZone, f);
  }
  return f;
}

/**
 * An Avito time (unix seconds) as `dd.mm.yyyy, hh:mm` in `timeZone` (an IANA zone such as
 * `Europe/Moscow`); `yyyy-mm-dd hh:mm UTC` when the zone is unknown or the date out of range.
 */
export function formatAvitoTime(seconds: number, timeZone: string): string {
  try {
    const f = timeFormat(timeZone);
    if (f) return f.format(new Date(seconds * 1000));
  } catch {
    // a date out of the formatter's range: the ISO form below
  }
  return new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

/** The URL of the largest size in an Avito image's `sizes` (`{"1280x960": url, …}`), if any. */
export function largestImage(sizes: unknown): string | undefined {
  if (typeof sizes !== 'object' || sizes === null) return undefined;
  let best: [number, string] | undefined;
  for (const [k, v] of Object.entries(sizes)) {
    const m = /^(\d+)x(\d+)$/.exec(k);
    if (typeof v !== 'string') continue;
    const area = m ? Number(m[1]) * Number(m[2]) : 0;
    if (!best || area > best[0]) best = [area, v];
  }
  return best?.[1];
}

/** The body of an Avito message as plain text, readable for each Avito type; media become links. */
export function messageBody(m: OutgoingMessage, lang: 'ru' | 'en'): string {
  const t = BODY_LABELS[lang];
  const c = m.content as Record<string, Record<string, unknown> | string | undefined>;
  const obj = (k: string) => (typeof c[k] === 'object' && c[k] !== null ? (c[k] as Record<string, unknown>) : {});
  const s = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  switch (m.type) {
    case 'text':
      return m.text ?? '';
    case 'image': {
      const url = largestImage(obj('image').sizes);
      return `[${t.image}] ${url ?? ''}`.trim();
    }
    case 'voice':
      return m.voiceUrl ? `[${t.voice}] ${m.voiceUrl}` : `[${t.voice}] (${t.voiceKept})`;
    case 'link': {
      const l = obj('link');
      const p = typeof l.preview === 'object' && l.preview !== null ? (l.preview as Record<string, unknown>) : {};
      // A manager wants the preview's title (an item link's title is the item), then the link.
      const title = s(p.title) ? `[${t.link}] ${s(p.title)}` : undefined;
      const link = [s(l.text), s(l.url) && s(l.url) !== s(l.text) ? s(l.url) : undefined].filter(Boolean).join(' ');
      return [title, link].filter(Boolean).join('\n') || `[${t.link}]`;
    }
    case 'item': {
      const i = obj('item');
      return `[${t.item}] ${[s(i.title), s(i.price_string), s(i.item_url)].filter(Boolean).join(' · ')}`;
    }
    case 'location': {
      const l = obj('location');
      const lat = typeof l.lat === 'number' ? l.lat : undefined;
      const lon = typeof l.lon === 'number' ? l.lon : undefined;
      const map = lat !== undefined && lon !== undefined ? ` https://yandex.ru/maps/?pt=${lon},${lat}&z=16` : '';
      return `[${t.location}] ${s(l.text) ?? s(l.title) ?? ''}${map}`.trim();
    }
    case 'call':
      return `[${t.call}] ${s(obj('call').status) === 'missed' ? t.missed : s(obj('call').status) ?? ''}`.trim();
    case 'deleted':
      return m.messageId.endsWith(':deleted') ? `[${t.deletedLater}]` : `[${t.deleted}]`;
    case 'system':
      return m.text ?? '';
    default:
      return m.text ?? `[${t.unsupported} ${m.type}: ${t.unsupportedTail}]`;
  }
}

const IMAGE_LINK = /^https?:\/\/\S+\.(jpe?g|png|gif|bmp|heic|webp)(\?\S*)?$/i;
const MIME: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', bmp: 'image/bmp', heic: 'image/heic', webp: 'image/webp' };

/**
 * The file name a link ends with, decoded where it is valid percent-encoding: `sale-100%.jpg`
 * is not, and stays as written (a manager's link must never stop the replies: invariant 8).
 */
function fileName(link: string, ext: string): string {
  let last: string;
  try {
    last = new URL(link).pathname.split('/').pop() ?? '';
  } catch {
    last = '';
  }
  try {
    last = decodeURIComponent(last);
  } catch {
    /* kept as written */
  }
  return last || `image.${ext}`;
}

/**
 * A manager's reply written in a CRM as text: undefined unless it starts with `prefix` (after
 * leading blanks). A line holding only an image link (jpg, png, gif, bmp, heic, webp) becomes an
 * image sent after the text; undefined when nothing is left to send. Never throws on odd links.
 */
export function replyFromText(raw: string, prefix: string): Pick<IncomingReply, 'text' | 'attachments'> | undefined {
  const trimmed = raw.trimStart();
  if (!trimmed.startsWith(prefix)) return undefined;
  const attachments: IncomingReply['attachments'] = [];
  const textLines: string[] = [];
  for (const line of trimmed.slice(prefix.length).split('\n')) {
    const t = line.trim();
    const m = IMAGE_LINK.exec(t);
    if (m) {
      const ext = m[1]!.toLowerCase();
      attachments.push({ url: t, name: fileName(t, ext), mime: MIME[ext] ?? 'image/jpeg' });
    } else textLines.push(line);
  }
  const text = textLines.join('\n').trim();
  if (!text && attachments.length === 0) return undefined;
  return { text, attachments };
}
