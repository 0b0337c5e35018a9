import type { AvitoClient } from '../avito/client.js';
import type { ConversationRef, ReadReceipt } from '../connector-sdk/contract.js';
import { describeError } from '../errors.js';
import { loadConversations } from '../ledger/conversations.js';
import { markReadsReported, readsToReport, recordReadCheck, repliesAwaitingRead } from '../ledger/read-receipts.js';
import type { ConnectorWorkOptions } from './backoff.js';

/** How often the daemon looks (per account and connector). */
export const READ_RECEIPTS_SECONDS = 60;
/** Replies older than this are not looked at any more (a buyer who never opened the chat). */
export const READ_WATCH_DAYS = 7;
/** Chats looked at per run (one Avito read each), those looked at longest ago first. */
export const READ_CHATS_PER_RUN = 20;
/** Messages read per chat: the newest page. */
const READ_PAGE = 50;
/** Reads told to the connector per call. */
const REPORT_BATCH = 100;

export interface ReadReceiptOptions extends ConnectorWorkOptions {
  client: AvitoClient;
}

export interface ReadReceiptReport {
  /** Chats looked at on Avito. */
  chats: number;
  /** Replies newly seen read. */
  read: number;
  /** Reads the connector was told about. */
  reported: number;
}

/**
 * Read receipts (capability `readReceipts`): Avito's webhooks do not say when the buyer read our
 * message, but the chat's messages do (`read`/`is_read` on our own message). So the chats of
 * replies sent in the last week and not yet seen read are looked at, a few per run, and each
 * read goes to the connector once (`markRead`), e.g. a CRM chat panel's "read" status. A buyer
 * who answered after a reply has read it, whatever the flag says.
 */
export class ReadReceiptService {
  private readonly now: () => number;

  constructor(private readonly o: ReadReceiptOptions) {
    this.now = o.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.o.capabilities.readReceipts && typeof this.o.connector.markRead === 'function';
  }

  async run(signal?: AbortSignal): Promise<ReadReceiptReport> {
    const report: ReadReceiptReport = { chats: 0, read: 0, reported: 0 };
    if (!this.enabled) return report;
    const { ledger, accountId, connectorId, log } = this.o;
    const now = this.now();
    const awaiting = await repliesAwaitingRead(ledger.db, accountId, connectorId, now - READ_WATCH_DAYS * 86_400_000, READ_CHATS_PER_RUN);
    for (const [chatId, replies] of awaiting) {
      if (signal?.aborted) break;
      let messages;
      try {
        messages = await this.o.client.listMessages(chatId, { limit: READ_PAGE });
      } catch (err) {
        // One chat Avito will not show is looked at again later; the others go on.
        log.warn({ account: accountId, chat: chatId, err: describeError(err) }, 'could not read the chat to see whether the buyer read our reply');
        continue;
      }
      report.chats++;
      const byId = new Map(messages.map((m) => [m.id, m]));
      const read = new Map<number, number>();
      for (const r of replies) {
        const own = r.avitoMessageIds.map((id) => byId.get(id)).filter((m) => m !== undefined);
        const sentAt = Math.max(0, ...own.map((m) => m.created));
        const flagged = own.find((m) => m.is_read === true || (typeof m.read === 'number' && m.read > 0));
        // The buyer wrote after the reply (or so much that it left the page): they opened the chat.
        const answer = messages
          .filter((m) => m.direction === 'in' && (own.length === 0 || m.created >= sentAt))
          .sort((a, b) => a.created - b.created)[0];
        if (flagged) read.set(r.replyId, typeof flagged.read === 'number' && flagged.read > 0 ? flagged.read * 1000 : now);
        else if (answer && (own.length > 0 || messages.length >= READ_PAGE)) read.set(r.replyId, answer.created * 1000);
      }
      await recordReadCheck(ledger.db, replies.map((r) => r.replyId), read, now);
      report.read += read.size;
    }
    report.reported = await this.report();
    return report;
  }

  /** Tells the connector about reads it has not heard of; a failure leaves them for the next run. */
  private async report(): Promise<number> {
    const { ledger, accountId, connectorId, connector } = this.o;
    let told = 0;
    for (;;) {
      const reads = await readsToReport(ledger.db, accountId, connectorId, REPORT_BATCH);
      if (reads.length === 0) return told;
      const convs = await loadConversations(ledger.db, accountId, connectorId, [...new Set(reads.map((r) => r.chatId))]);
      const items: ReadReceipt[] = reads.map((r) => {
        const known = convs.get(r.chatId);
        const conversation: ConversationRef = known?.id === r.conversationId ? known : { id: r.conversationId };
        return { conversation, remoteId: r.remoteId, readAt: r.readAt };
      });
      await connector.markRead!(items);
      await markReadsReported(ledger.db, reads.map((r) => r.replyId));
      told += reads.length;
      if (reads.length < REPORT_BATCH) return told;
    }
  }
}
