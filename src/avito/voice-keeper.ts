import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AvitoClient } from './client.js';
import { describeError } from '../errors.js';
import type { LedgerDb } from '../ledger/database.js';
import { chunks } from '../ledger/chats.js';

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

  static fileName(accountId: string, voiceId: string): string {
    return path.join('voice', accountId, `${voiceId.replace(/[^A-Za-z0-9_.-]/g, '_')}.mp4`);
  }

  absolutePath(relative: string): string {
    return path.join(this.dataDir, relative);
  }

  /** Fetches every voice file of this account not kept yet. Returns how many were saved. */
  async keepPending(client: AvitoClient, signal?: AbortSignal): Promise<number> {
    const pending = await this.db
      .selectFrom('voice_files')
      .select('voice_id')
      .where('account_id', '=', client.accountId)
      .where('path', 'is', null)
      .where('attempts', '<', MAX_ATTEMPTS)
      .limit(500)
      .execute();
    let saved = 0;
    for (const batch of chunks(pending.map((p) => p.voice_id), VOICE_BATCH)) {
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
            await this.db
              .updateTable('voice_files')
              .set({ path: rel, size: data.byteLength, fetched_at: Date.now(), error: null })
              .where('account_id', '=', client.accountId)
              .where('voice_id', '=', voiceId)
              .execute();
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
    await this.db
      .updateTable('voice_files')
      .set((eb) => ({ error, attempts: eb('attempts', '+', 1) }))
      .where('account_id', '=', accountId)
      .where('voice_id', 'in', voiceIds)
      .execute();
  }
}
