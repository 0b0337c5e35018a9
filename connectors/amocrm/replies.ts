import { replyFromText, type IncomingReply } from '../../src/connector-sdk/index.js';
import { markerOf } from './mappers.js';
import type { AmoNote } from './schemas.js';

/**
 * A `common` note is a reply when its text starts with the prefix. Notes this connector wrote
 * carry its marker and are never replies (delivered messages are `service_message` notes anyway).
 * A line holding only an image link becomes an image sent after the text.
 */
export function replyFromNote(note: AmoNote, prefix: string): IncomingReply | undefined {
  if (note.note_type !== 'common') return undefined;
  const raw = note.params?.text ?? '';
  if (markerOf(raw)) return undefined;
  const reply = replyFromText(raw, prefix);
  if (!reply) return undefined;
  return { remoteId: String(note.id), conversationId: String(note.entity_id), ...reply, createdAt: note.created_at ?? 0 };
}

/** One note named in an amoCRM `note_lead` webhook, with what the body says about it. */
export interface NoteHint {
  id: number;
  /** v2 numbering in webhooks: 4 = common (GUESS for the rest: 25 = service_message). */
  noteType: string | undefined;
  text: string | undefined;
}

/** The account a webhook names (`account[id]`, `account[subdomain]`). */
export function accountOfWebhook(body: string): { id: string | undefined; subdomain: string | undefined } {
  const params = new URLSearchParams(body);
  return { id: params.get('account[id]') ?? undefined, subdomain: params.get('account[subdomain]')?.toLowerCase() ?? undefined };
}

/**
 * Notes in an amoCRM `note_lead` webhook (application/x-www-form-urlencoded, keys like
 * `leads[note][0][note][id]`, `…[note_type]`, `…[text]`; a real one is
 * fixtures/note-lead-webhook.form.txt). Only a hint: the notes are read back before anything is sent.
 */
export function noteHintsFromWebhook(body: string): NoteHint[] {
  const params = new URLSearchParams(body);
  const byIndex = new Map<string, Partial<NoteHint> & { id?: number }>();
  for (const [k, v] of params) {
    const m = /^leads\[note\]\[(\d+)\](?:\[note\])?\[(id|note_type|text)\]$/.exec(k);
    if (!m) continue;
    const h = byIndex.get(m[1]!) ?? {};
    if (m[2] === 'id') {
      // Ids beyond 2^53 would be rounded into another note's id: not ids of ours, skipped.
      if (/^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v))) h.id = Number(v);
    } else if (m[2] === 'note_type') h.noteType = v;
    else h.text = v;
    byIndex.set(m[1]!, h);
  }
  const seen = new Set<number>();
  const out: NoteHint[] = [];
  for (const h of byIndex.values()) {
    if (h.id === undefined || seen.has(h.id)) continue;
    seen.add(h.id);
    out.push({ id: h.id, noteType: h.noteType, text: h.text });
  }
  return out;
}

/** Note ids in a `note_lead` webhook. */
export function noteIdsFromWebhook(body: string): number[] {
  return noteHintsFromWebhook(body).map((h) => h.id);
}

/**
 * Whether a hinted note can be a reply at all, from what the webhook says: only `common` notes
 * (type 4) that start with the prefix and carry no marker of ours are. The daemon's own notes
 * (delivered messages, reply outcomes: `service_message` with a marker) are dropped here, so
 * amoCRM calling back for every note the daemon writes costs no read.
 */
export function mayBeReply(h: NoteHint, prefix: string): boolean {
  if (h.noteType !== undefined && h.noteType !== '4' && h.noteType !== 'common') return false;
  if (h.text === undefined) return true;
  if (markerOf(h.text)) return false;
  return h.text.trimStart().startsWith(prefix);
}
