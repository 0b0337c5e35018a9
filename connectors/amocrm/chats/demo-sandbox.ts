import type { ConnectorSandbox } from '../../../src/connector-sdk/index.js';
import { SandboxAmo } from '../sandbox.js';
import { SandboxAmojo } from './sandbox-amojo.js';

/**
 * The sandbox amoCRM in chats mode, for `avito-sync demo --mode chats`: the REST sandbox plus the
 * Chats API sandbox, whose signed hooks go to `<publicUrl>/webhooks/amojo/<scope_id>` (the URL one
 * registers with amoCRM for the channel, so the daemon has nothing to subscribe to).
 */
export async function startChatsSandbox(publicUrl: string): Promise<ConnectorSandbox> {
  const amo = new SandboxAmo();
  await amo.start();
  const amojo = new SandboxAmojo(amo, { hookUrl: `${publicUrl}/webhooks/amojo/:scope_id` });
  await amojo.start().catch(async (err: unknown) => {
    await amo.stop();
    throw err;
  });
  const answers = new Map<string, string>();
  const chatOf = (messageId: string) => [...amojo.chats.values()].find((c) => c.messages.some((m) => m.clientId === messageId));
  return {
    url: amo.url,
    env: { AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, ...amojo.env() },
    webhookRegistered: () => true,
    webhookStory: "amoCRM's chat channel sends its signed hooks to the daemon",
    delivered(messageId) {
      const chat = chatOf(messageId);
      if (!chat) return undefined;
      const lead = amojo.leadOf(chat.conversationId);
      const m = chat.messages.find((x) => x.clientId === messageId)!;
      const what = m.message.type === 'text' ? `«${m.message.text}»` : `a ${m.message.type}`;
      return {
        conversation: chat.conversationId,
        // The connector names the lead, prices and tags it from Unsorted a moment after the first message.
        describe: `amoCRM chat panel: ${what} from «${chat.user.name}»${!lead ? '' : lead.tags.length === 0 ? ` — lead #${lead.id} «${lead.name}» in Unsorted (the item's name, price and tag follow)` : ` — lead #${lead.id} «${lead.name}», ${lead.price.toLocaleString('ru-RU')} ₽, tags ${lead.tags.join(', ')}`}`,
        where: `message in the amoCRM chat panel${lead ? ` of lead #${lead.id}` : ''}`,
      };
    },
    writeInternal(conversation, text) {
      const lead = amojo.leadOf(conversation);
      if (lead) amo.managerNote(lead.id, text);
    },
    writeReply(conversation, text) {
      answers.set(conversation, amojo.managerAnswer(conversation, { text }));
      return { story: `amoCRM: the manager answers in the chat panel «${text}» (amoCRM sends a signed hook to the daemon)`, reply: text };
    },
    replyOutcomeWritten(conversation) {
      const id = answers.get(conversation);
      return Boolean(id && amojo.statuses.get(id)?.some((s) => s.delivery_status === 1));
    },
    summary() {
      const messages = [...amojo.chats.values()].reduce((n, c) => n + c.messages.length, 0);
      return `${amo.leads.size} leads, ${amo.contacts.size} contacts, ${amojo.chats.size} chats with ${messages} messages in amoCRM's chat panel`;
    },
    async stop() {
      await amojo.stop();
      await amo.stop();
    },
  };
}
