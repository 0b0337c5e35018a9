import { z } from 'zod';

/** The Chats API host for amocrm.ru accounts (`amojo.amocrm.com` for .com, `amojo.kommo.com` for Kommo). */
export const DEFAULT_AMOJO_URL = 'https://amojo.amocrm.ru';

/**
 * The chats-mode keys of the `amocrm` section (design.md §8.4). Spread into the connector's
 * config schema; `refineChatsConfig` checks that chats mode has its channel.
 */
export const chatsConfigShape = {
  /** `notes` (every message a note, replies by prefix) or `chats` (amoCRM's chat panel). Default notes. */
  mode: z.enum(['notes', 'chats']).default('notes'),
  /** The channel id (uuid) amoCRM issued for the integration. Required in chats mode. */
  channelId: z.string().trim().min(1).optional(),
  /** The channel secret (40 hex) amoCRM issued with it. Required in chats mode. */
  channelSecret: z.string().trim().min(1).optional(),
  /** The Chats API base. Default https://amojo.amocrm.ru. */
  amojoUrl: z.string().trim().url('must be a URL like https://amojo.amocrm.ru').default(DEFAULT_AMOJO_URL).transform((u) => u.replace(/\/+$/, '')),
  /** The channel bot's id: the sender (`ref_id`) of the seller's own messages. Optional. */
  channelBotId: z.string().trim().min(1).optional(),
};

export function refineChatsConfig(c: { mode: 'notes' | 'chats'; channelId?: string | undefined; channelSecret?: string | undefined }, ctx: z.RefinementCtx): void {
  if (c.mode !== 'chats') return;
  if (!c.channelId) ctx.addIssue({ code: 'custom', path: ['channelId'], message: 'is required in chats mode: the channel id amoCRM issued for the integration' });
  if (!c.channelSecret) ctx.addIssue({ code: 'custom', path: ['channelSecret'], message: 'is required in chats mode: the channel secret amoCRM issued with the channel' });
}

/** The env variables of chats mode, in the connector's `env` declaration shape. */
export const CHATS_ENV = [
  { name: 'AMOCRM_MODE', path: ['mode'], kind: 'string', describe: 'notes (every message a note on the lead) or chats (messages in amoCRM\'s chat panel)' },
  { name: 'AMOCRM_CHANNEL_ID', path: ['channelId'], kind: 'string', describe: 'the chat channel id amoCRM registered for the integration (chats mode)' },
  { name: 'AMOCRM_CHANNEL_SECRET', path: ['channelSecret'], kind: 'string', describe: 'the chat channel secret amoCRM issued with it (chats mode)', secret: true },
  { name: 'AMOCRM_AMOJO_URL', path: ['amojoUrl'], kind: 'string', describe: 'the amoCRM Chats API base URL' },
  { name: 'AMOCRM_CHANNEL_BOT_ID', path: ['channelBotId'], kind: 'string', describe: "the channel bot's id: the sender of the seller's own messages (chats mode)" },
] as const;
