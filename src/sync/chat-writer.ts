import type { GroupCommit } from '../ledger/group-commit.js';
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

/**
 * Writes a fetched chat atomically: its row, its new messages and its sync mark (the chat's
 * own cursor) in one transaction, shared with other chats finishing in the same tick.
 */
export function writeChat(commit: GroupCommit, stmts: IngestStatements, accountId: string, w: ChatWrite): Promise<ChatWriteResult> {
  return commit.run(() => {
    stmts.upsertChat(w.row);
    const r = stmts.insertMessages(w.messages);
    stmts.markSynced(accountId, w.chatId, w.updated);
    return r;
  });
}
