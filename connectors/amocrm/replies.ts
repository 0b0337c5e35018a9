import type { IncomingReply } from '../../src/connector-sdk/index.js';
import { markerOf } from './mappers.js';
import type { AmoNote } from './schemas.js';

const IMAGE_LINK = /^https?:\/\/\S+\.(jpe?g|png|gif|bmp|heic|webp)(\?\S*)?$/i;
const MIME: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', bmp: 'image/bmp', heic: 'image/heic', webp: 'image/webp' };

/**
 * A `common` note is a reply when its text starts with the prefix. Notes this connector wrote
 * carry its marker and are never replies (delivered messages are `service_message` notes anyway).
 * A line holding only an image link becomes an image sent after the text.
 */
export function replyFromNote(note: AmoNote, prefix: string): IncomingReply | undefined {
  if (note.note_type !== 'common') return undefined;
  const raw = note.params?.text ?? '';
  if (markerOf(raw)) return undefined;
  const trimmed = raw.trimStart();
  if (!trimmed.startsWith(prefix)) return undefined;
  const lines = trimmed.slice(prefix.length).split('\n');
  const attachments: IncomingReply['attachments'] = [];
  const textLines: string[] = [];
  for (const line of lines) {
    const t = line.trim();
    const m = IMAGE_LINK.exec(t);
    if (m) {
      const ext = m[1]!.toLowerCase();
      attachments.push({ url: t, name: decodeURIComponent(new URL(t).pathname.split('/').pop() || `image.${ext}`), mime: MIME[ext] ?? 'image/jpeg' });
    } else textLines.push(line);
  }
  const text = textLines.join('\n').trim();
  if (!text && attachments.length === 0) return undefined;
  return { remoteId: String(note.id), conversationId: String(note.entity_id), text, attachments, createdAt: note.created_at ?? 0 };
}

/**
 * Note ids in an amoCRM `note_lead` webhook (application/x-www-form-urlencoded, keys like
 * `leads[note][0][note][id]`). Only a hint: the notes are read back before anything is sent.
 */
export function noteIdsFromWebhook(body: string): number[] {
  const params = new URLSearchParams(body);
  const ids = new Set<number>();
  for (const [k, v] of params) {
    if (/^leads\[note\]\[\d+\](\[note\])?\[id\]$/.test(k) && /^\d+$/.test(v)) ids.add(Number(v));
  }
  return [...ids];
}
