import type {
  AccessCheck, ConnectorContext, ConnectorInstance, ConversationRef, ConversationRequest, DeliveryItem, IncomingReply, ItemResult, ReplyOutcome,
} from 'avito-crm-sync/connector';
import { __CLASS__Client } from './client.js';
import type { __CLASS__Config } from './index.js';

interface Note { id: string; conversationId: string; text: string; marker: string | null; author: 'manager' | 'integration'; createdAt: number }

/**
 * One conversation per Avito chat (found again by the chat id, so a lost ledger write does not
 * make a second one), one note per message carrying the Avito message id as its marker (so
 * `findDelivered` can tell what arrived before a crash), replies are notes with the prefix.
 */
export class __CLASS__Connector implements ConnectorInstance {
  private readonly client: __CLASS__Client;

  constructor(private readonly ctx: ConnectorContext<__CLASS__Config>) {
    ctx.registerSecret(ctx.config.token);
    this.client = new __CLASS__Client({ baseUrl: ctx.config.baseUrl, token: ctx.config.token, ...(ctx.retry ? { retry: ctx.retry } : {}) });
  }

  async checkAccess(): Promise<AccessCheck[]> {
    try {
      await this.client.request('GET', '/me');
      return [{ check: '__ID__ access', verdict: 'ok', detail: `${this.ctx.config.baseUrl} accepts the token` }];
    } catch (err) {
      return [{ check: '__ID__ access', verdict: 'fail', detail: err instanceof Error ? err.message : String(err), action: 'Set __ENV___TOKEN to a valid API token.' }];
    }
  }

  async ensureConversations(requests: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]> {
    const out: ItemResult<ConversationRef>[] = [];
    for (const r of requests) {
      try {
        if (r.previous) {
          out.push({ ok: true, value: r.previous });
          continue;
        }
        // The CRM finds a conversation by its chat id: asking again gives the same one.
        const c = await this.client.request<{ id: string }>('POST', '/conversations', { chatId: r.chat.chatId, title: r.chat.item.title ?? `Avito chat with ${r.chat.buyer.name ?? 'a buyer'}`, url: r.chat.chatUrl });
        out.push({ ok: true, value: { id: c.id } });
      } catch (error) {
        out.push({ ok: false, error });
      }
    }
    return out;
  }

  async deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]> {
    const created = await this.client.request<{ id: string }[]>('POST', '/notes', items.map((i) => ({
      conversationId: i.conversation.id,
      marker: i.message.messageId,
      text: `${i.message.author.kind === 'buyer' ? 'Buyer' : 'Seller'}: ${i.message.text ?? `[${i.message.type}]`}`,
      createdAt: i.message.created,
    })));
    return created.map((c) => ({ ok: true, value: { remoteId: c.id } }));
  }

  async findDelivered(items: readonly DeliveryItem[]): Promise<Map<string, string>> {
    const markers = items.map((i) => encodeURIComponent(i.message.messageId)).join(',');
    const notes = await this.client.request<Note[]>('GET', `/notes/by-marker?markers=${markers}`);
    return new Map(notes.filter((n) => n.marker).map((n) => [n.marker!, n.id]));
  }

  async pollReplies(cursor: string | undefined): Promise<{ replies: IncomingReply[]; cursor: string | undefined }> {
    // Undefined: start from now (the newest note), so old notes are never sent as replies.
    if (cursor === undefined) return { replies: [], cursor: (await this.client.request<{ latest: string }>('GET', '/notes/latest')).latest };
    const page = await this.client.request<{ notes: Note[]; latest: string }>('GET', `/notes?after=${encodeURIComponent(cursor)}`);
    const prefix = this.ctx.config.replyPrefix;
    const replies = page.notes
      .filter((n) => n.author === 'manager' && n.text.startsWith(prefix))
      .map((n) => ({ remoteId: n.id, conversationId: n.conversationId, text: n.text.slice(prefix.length).trim(), attachments: [], createdAt: n.createdAt }));
    return { replies, cursor: page.notes.at(-1)?.id ?? cursor };
  }

  async reportReplies(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void> {
    if (items.length === 0) return;
    await this.client.request('POST', '/notes', items.map((i) => ({
      conversationId: i.conversation.id,
      marker: null,
      text: i.outcome.sent ? 'Reply sent to the buyer on Avito.' : `Reply NOT sent to Avito: ${i.outcome.reason}`,
    })));
  }

  async close(): Promise<void> {}
}
