import { SandboxAmo } from '../sandbox.js';
import { SandboxAmojo } from './sandbox-amojo.js';

/**
 * The sandbox amoCRM in chats mode for `avito-sync demo --mode chats`: the REST sandbox plus the
 * Chats API sandbox, whose hooks go to `<publicUrl>/webhooks/amojo/:scope_id` (the URL one
 * registers with amoCRM for the channel). Same shape as the notes-mode demo sandbox.
 */
export async function chatsDemoSandbox(publicUrl: string) {
  const amo = new SandboxAmo();
  await amo.start();
  const amojo = new SandboxAmojo(amo, { hookUrl: `${publicUrl}/webhooks/amojo/:scope_id` });
  await amojo.start();
  const answers = new Map<string, string>();
  const chatOf = (messageId: string) => [...amojo.chats.values()].find((c) => c.messages.some((m) => m.clientId === messageId));
  return {
    url: amo.url,
    env: { AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, ...amojo.env() },
    amo,
    amojo,
    /** Hooks are registered with the channel, not by the daemon: there is nothing to wait for. */
    webhookRegistered: () => true,
    delivered(messageId: string): { conversation: string; describe: string } | undefined {
      const chat = chatOf(messageId);
      if (!chat) return undefined;
      const lead = amojo.leadOf(chat.conversationId);
      const m = chat.messages.find((x) => x.clientId === messageId)!;
      const what = m.message.type === 'text' ? `«${m.message.text}»` : `a ${m.message.type}`;
      return {
        conversation: chat.conversationId,
        describe: `amoCRM chat panel: ${what} from «${chat.user.name}»${lead ? ` — lead #${lead.id} «${lead.name}», ${lead.price.toLocaleString('ru-RU')} ₽, tags ${lead.tags.join(', ') || '—'}${amojo.unsorted.size ? ', in Unsorted' : ''}` : ''}`,
      };
    },
    writeInternal(conversation: string, text: string): void {
      const lead = amojo.leadOf(conversation);
      if (lead) amo.managerNote(lead.id, text);
    },
    writeReply(conversation: string, text: string): string {
      answers.set(conversation, amojo.managerAnswer(conversation, { text }));
      return `amoCRM: the manager answers in the chat panel «${text}» (a signed hook goes to the daemon)`;
    },
    replyOutcomeWritten(conversation: string): boolean {
      const id = answers.get(conversation);
      return Boolean(id && amojo.statuses.get(id)?.some((s) => s.delivery_status === 1));
    },
    summary(): string {
      const messages = [...amojo.chats.values()].reduce((n, c) => n + c.messages.length, 0);
      return `${amo.leads.size} leads, ${amo.contacts.size} contacts, ${amojo.chats.size} chats with ${messages} messages in amoCRM's chat panel`;
    },
    async stop(): Promise<void> {
      await amojo.stop();
      await amo.stop();
    },
  };
}
