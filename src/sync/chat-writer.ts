import type { Ledger } from '../ledger/database.js';
import type { IngestStatements } from '../ledger/statements.js';
import type { NewChat, NewMessage } from '../ledger/tables.js';

export interface ChatWrite {
  chatId: string;
  /** The chat's `updated` these messages cover: becomes its sync mark. */
  updated: number;
  row: NewChat;
  messages: readonly NewMessage[];
}

export interface ChatWriteResult {
  inserted: NewMessage[];
  deleted: string[];
}

interface Pending extends ChatWrite {
  resolve: (r: ChatWriteResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Writes a fetched chat (its row, its new messages, its sync mark) atomically. Chats finished in
 * the same tick share one transaction, which saves a commit per chat; if that transaction fails,
 * each chat is written alone, so one bad chat fails alone and the rest go on.
 */
export class ChatWriter {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly stmts: IngestStatements,
    private readonly accountId: string,
  ) {}

  write(w: ChatWrite): Promise<ChatWriteResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...w, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private apply(w: ChatWrite): ChatWriteResult {
    this.stmts.upsertChat(w.row);
    const r = this.stmts.insertMessages(w.messages);
    this.stmts.markSynced(this.accountId, w.chatId, w.updated);
    return r;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    try {
      const results = await this.ledger.writeSync(() => batch.map((w) => this.apply(w)));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch {
      for (const w of batch) {
        try {
          w.resolve(await this.ledger.writeSync(() => this.apply(w)));
        } catch (err) {
          w.reject(err);
        }
      }
    }
  }
}
