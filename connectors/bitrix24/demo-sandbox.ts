import type { ConnectorSandbox, ConnectorSandboxOptions } from '../../src/connector-sdk/index.js';
import { DEFAULT_REPLY_PREFIX } from './config.js';
import { MARKER_PREFIX, markerOf } from './mappers.js';
import { SandboxB24, WEBHOOK_USER } from './sandbox.js';

/**
 * The sandbox Bitrix24 as `avito-sync demo --crm bitrix24` drives it: a lead per chat, a timeline
 * comment per message, and the outbound webhook (ONCRMTIMELINECOMMENTADD) pointed at the daemon's
 * `/webhooks/bitrix24/<secret>`, as an operator sets it up in the portal (Bitrix24 has no API
 * for an incoming-webhook user to register it, so the daemon has nothing to subscribe to).
 */
export async function startB24DemoSandbox(o: ConnectorSandboxOptions): Promise<ConnectorSandbox> {
  const b24 = new SandboxB24();
  await b24.start();
  b24.eventHandler = `${o.publicUrl}/webhooks/bitrix24/${o.webhookSecret}`;
  const leadOf = (conversation: string) => Number(conversation);
  const byWebhookUser = (id: number) => b24.entityComments('lead', id).filter((c) => c.AUTHOR_ID === WEBHOOK_USER);
  return {
    url: b24.url,
    env: { BITRIX24_WEBHOOK_URL: b24.webhookUrl, BITRIX24_APPLICATION_TOKEN: b24.applicationToken },
    webhookRegistered: () => true,
    webhookStory: "Bitrix24's outbound webhook (ONCRMTIMELINECOMMENTADD) calls the daemon, as the operator set it up in the portal",
    delivered(messageId) {
      const comment = [...b24.comments.values()].find((c) => c.ENTITY_TYPE === 'lead' && markerOf(String(c.COMMENT)) === messageId);
      if (!comment) return undefined;
      const lead = b24.leads.get(Number(comment.ENTITY_ID));
      if (!lead) return undefined;
      const contact = lead.CONTACT_ID ? b24.contacts.get(Number(lead.CONTACT_ID)) : undefined;
      const price = Number(lead.OPPORTUNITY ?? 0);
      return {
        conversation: String(lead.ID),
        describe: `Bitrix24: lead #${lead.ID} «${String(lead.TITLE)}»${price ? `, ${price.toLocaleString('ru-RU')} ${String(lead.CURRENCY_ID ?? 'RUB')}` : ''}${contact ? `, contact «${String(contact.NAME ?? '')}»` : ''}`,
        where: `timeline comment on lead #${lead.ID} in Bitrix24`,
      };
    },
    writeInternal: (conversation, text) => void b24.managerComment('lead', leadOf(conversation), text),
    writeReply(conversation, text) {
      const reply = text.startsWith(DEFAULT_REPLY_PREFIX) ? text.slice(DEFAULT_REPLY_PREFIX.length).trim() : text;
      b24.managerComment('lead', leadOf(conversation), `${DEFAULT_REPLY_PREFIX} ${reply}`);
      return { story: `Bitrix24: the manager answers with a timeline comment «${DEFAULT_REPLY_PREFIX} ${reply}» on lead #${conversation} (the outbound webhook tells the daemon)`, reply };
    },
    // The connector's fate comments end with `#avito:reply-<comment id>`.
    replyOutcomeWritten: (conversation) => byWebhookUser(leadOf(conversation)).some((c) => String(c.COMMENT).includes(`${MARKER_PREFIX}reply-`)),
    summary: () => `${b24.leads.size} leads, ${b24.contacts.size} contacts, ${b24.comments.size} timeline comments in Bitrix24`,
    stop: () => b24.stop(),
  };
}
