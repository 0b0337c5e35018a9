import { AVITO_MAX_OFFSET, AVITO_PAGE_LIMIT } from '../avito/client.js';
import type { AvitoMessage } from '../avito/schemas.js';
import type { DeliveryItem } from '../connector-sdk/contract.js';
import { chatRows, chunks } from '../ledger/chats.js';
import { deliveriesOfMessages, requeueDeliveries } from '../ledger/deliveries.js';
import { messagesSince } from '../ledger/messages.js';
import { loadConversations } from '../ledger/conversations.js';
import type { AccountRuntime, Runtime } from '../runtime.js';
import { chatInfo } from '../sync/dispatcher.js';

export interface Gap {
  messageId: string;
  chatId: string;
  created: string;
  /** `ledger`, or a connector id. */
  missingIn: string;
  reason: string;
}

export interface ReconcileReport {
  account: string;
  since: string;
  avitoMessages: number;
  ledgerMessages: number;
  checkedInCrm: number;
  gaps: Gap[];
}

/**
 * `reconcile --report`: compares Avito, the ledger and each CRM over a recent window and lists
 * every message missing in one of them, with the reason where the ledger knows it.
 */
export async function reconcileAccount(rt: Runtime, acc: AccountRuntime, sinceSeconds: number, opts: { repair?: boolean } = {}): Promise<ReconcileReport> {
  const { client } = acc;
  const accountId = acc.config.id;
  const gaps: Gap[] = [];
  const iso = (s: number) => new Date(s * 1000).toISOString();

  // Avito: chats updated in the window, and their messages in the window.
  const avito = new Map<string, AvitoMessage & { chatId: string }>();
  const chatIds = new Set<string>();
  for (let offset = 0; offset <= AVITO_MAX_OFFSET; offset += AVITO_PAGE_LIMIT) {
    const page = await client.listChats({ chatTypes: acc.config.avito.chatTypes, limit: AVITO_PAGE_LIMIT, offset });
    for (const c of page) if (c.updated >= sinceSeconds) chatIds.add(c.id);
    if (page.length < AVITO_PAGE_LIMIT || page.every((c) => c.updated < sinceSeconds)) break;
  }
  for (const chatId of chatIds) {
    for (let offset = 0; offset <= AVITO_MAX_OFFSET; offset += AVITO_PAGE_LIMIT) {
      const page = await client.listMessages(chatId, { limit: AVITO_PAGE_LIMIT, offset });
      for (const m of page) if (m.created >= sinceSeconds) avito.set(m.id, { ...m, chatId });
      if (page.length < AVITO_PAGE_LIMIT || page.every((m) => m.created < sinceSeconds)) break;
    }
  }

  // The ledger over the same window.
  const ledgerRows = await messagesSince(rt.ledger.db, accountId, sinceSeconds);
  const inLedger = new Map(ledgerRows.map((m) => [m.message_id, m]));
  for (const m of avito.values()) {
    if (!inLedger.has(m.id)) gaps.push({ messageId: m.id, chatId: m.chatId, created: iso(m.created), missingIn: 'ledger', reason: 'not polled yet (the next poll or a webhook brings it)' });
  }

  // Each CRM: what the outbox says, checked against the CRM itself where the connector can look.
  let checked = 0;
  for (const c of rt.connectors.filter((x) => x.accountId === accountId)) {
    const connector = c.definition.id;
    const rows = ledgerRows.length
      ? await deliveriesOfMessages(rt.ledger.db, accountId, connector, ledgerRows.map((m) => m.message_id))
      : [];
    const byMessage = new Map(rows.map((r) => [r.message_id, r]));
    const delivered: DeliveryItem[] = [];
    const convs = await loadConversations(rt.ledger.db, accountId, connector, [...new Set(ledgerRows.map((m) => m.chat_id))]);
    const chats = await chatRows(rt.ledger.db, accountId, [...convs.keys()]);
    for (const m of ledgerRows) {
      const d = byMessage.get(m.message_id);
      const gap = (reason: string) => gaps.push({ messageId: m.message_id, chatId: m.chat_id, created: iso(m.created), missingIn: connector, reason });
      if (!d) gap('not queued for delivery yet (the dispatcher runs after every intake)');
      else if (d.status === 'skipped') continue; // a reply's echo: in the CRM as the reply itself
      else if (d.status === 'dead') gap(`dead letter after ${d.attempts} attempts: ${d.last_error ?? 'unknown error'} (dead-letters retry ${`d${d.id}`})`);
      else if (d.status !== 'delivered') gap(d.last_error ? `waiting for a retry (${d.attempts} attempts): ${d.last_error}` : 'waiting for delivery');
      else {
        const conv = convs.get(m.chat_id);
        if (conv) {
          delivered.push({
            conversation: conv,
            chat: chatInfo(accountId, m.chat_id, chats.get(m.chat_id)),
            message: { messageId: m.message_id, chatId: m.chat_id, created: m.created, type: m.type, author: { kind: 'buyer', name: null }, text: m.text, content: {}, voiceUrl: null, first: false },
          });
        }
      }
    }
    if (c.definition.capabilities.findDelivered && delivered.length) {
      const repairs: number[] = [];
      for (const part of chunks(delivered, 200)) {
        const found = await c.instance.findDelivered(part);
        checked += part.length;
        for (const d of part) {
          if (found.has(d.message.messageId)) continue;
          const row = byMessage.get(d.message.messageId)!;
          gaps.push({ messageId: d.message.messageId, chatId: d.message.chatId, created: iso(d.message.created), missingIn: connector, reason: `delivered as ${row.remote_id ?? '?'} on ${new Date(row.updated_at).toISOString()}, but the CRM no longer has it (deleted there?)${opts.repair ? ' — queued again' : ''}` });
          repairs.push(row.id);
        }
      }
      if (opts.repair && repairs.length) {
        await requeueDeliveries(rt.ledger.db, repairs);
      }
    }
  }
  return { account: accountId, since: iso(sinceSeconds), avitoMessages: avito.size, ledgerMessages: ledgerRows.length, checkedInCrm: checked, gaps };
}
