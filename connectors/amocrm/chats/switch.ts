import type { ConversationRef, ConversationRequest } from '../../../src/connector-sdk/index.js';

/**
 * Chats → notes: a conversation saved in chats mode names the Avito chat, not a lead. Notes mode
 * takes its lead when chats mode found one (the notes go on the same lead), else starts a new
 * lead as for a new chat. Messages already delivered stay delivered: the outbox is per connector,
 * not per mode, so nothing reaches the CRM twice.
 */
export function fromChatsMode(req: ConversationRequest): ConversationRequest {
  const prev = req.previous as (ConversationRef & { mode?: unknown; leadId?: unknown; contactId?: unknown }) | undefined;
  if (!prev || prev.mode !== 'chats') return req;
  if (typeof prev.leadId === 'number') {
    return { ...req, previous: { id: String(prev.leadId), leadId: prev.leadId, contactId: typeof prev.contactId === 'number' ? prev.contactId : null } };
  }
  return { ...req, previous: undefined };
}
