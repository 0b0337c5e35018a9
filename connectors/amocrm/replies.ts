import type { IncomingReply } from '../../src/connector-sdk/index.js';
import { markerOf } from './mappers.js';
import type { AmoNote } from './schemas.js';

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
      attachments.push({ url: t, name: fileName(t, ext), mime: MIME[ext] ?? 'image/jpeg' });
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
    // Ids beyond 2^53 would be rounded into another note's id: not ids of ours, skipped.
    if (/^leads\[note\]\[\d+\](\[note\])?\[id\]$/.test(k) && /^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v))) ids.add(Number(v));
  }
  return [...ids];
}
