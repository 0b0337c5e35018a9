import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AvitoClient } from './client.js';
import { describeError } from '../errors.js';
import type { LedgerDb } from '../ledger/database.js';
import { chunks } from '../ledger/chats.js';
import { pendingVoiceIds, voiceFailed, voiceKept } from '../ledger/voice-files.js';

/** A file name for an id: itself when plain and short, else `~` and its SHA-256. */
function safeName(id: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(id) ? id : `~${createHash('sha256').update(id).digest('hex')}`;
}

/** Voice ids per getVoiceFiles call. */
const VOICE_BATCH = 50;
/** Give up on a voice file after this many failed attempts (the message itself stays). */
const MAX_ATTEMPTS = 5;

/**
 * Avito's voice links live one hour: the file is fetched when the message arrives and kept
 * under `<dataDir>/voice/<account>/<voice_id>.mp4` (opus in mp4).
 */
export class VoiceKeeper {
  constructor(
    private readonly db: LedgerDb,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  /**
   * Where a voice file is kept, relative to the data directory. Ids of plain characters keep
   * their name; any other id (and any account id with other characters) is named by its SHA-256
   * behind a `~`, which plain names never start with: `a/b` and `a_b` no longer share a file
   * (issue 9, item 9). Files already kept stay where the ledger says they are.
   */
  static fileName(accountId: string, voiceId: string): string {
    return path.join('voice', safeName(accountId), `${safeName(voiceId)}.mp4`);
  }

  absolutePath(relative: string): string {
    return path.join(this.dataDir, relative);
  }

  /** Fetches every voice file of this account not kept yet. Returns how many were saved. */
  async keepPending(client: AvitoClient, signal?: AbortSignal): Promise<number> {
    const pending = await pendingVoiceIds(this.db, client.accountId, MAX_ATTEMPTS);
    let saved = 0;
    for (const batch of chunks(pending, VOICE_BATCH)) {
      if (signal?.aborted) break;
      let urls: Record<string, string>;
      try {
        urls = await client.getVoiceFiles(batch);
      } catch (err) {
        await this.fail(client.accountId, batch, describeError(err));
        continue;
      }
      await Promise.all(
        batch.map(async (voiceId) => {
          const url = urls[voiceId];
          if (!url) return this.fail(client.accountId, [voiceId], 'Avito returned no link for this voice message');
          try {
            const data = await client.download(url);
            const rel = VoiceKeeper.fileName(client.accountId, voiceId);
            const abs = this.absolutePath(rel);
            await mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
            await writeFile(abs, data, { mode: 0o600 });
            await voiceKept(this.db, client.accountId, voiceId, rel, data.byteLength);
            saved++;
          } catch (err) {
            await this.fail(client.accountId, [voiceId], describeError(err));
          }
        }),
      );
    }
    return saved;
  }

  private async fail(accountId: string, voiceIds: string[], error: string): Promise<void> {
    this.log.warn({ account: accountId, voiceIds, error }, 'voice file not kept yet');
    await voiceFailed(this.db, accountId, voiceIds, error);
  }
}
