/**
 * Avito's chat-bots (`type: system`, `content.flow_id`), named as the Messenger guide names the
 * popular ones. An unknown flow keeps its id as its name.
 */
export const KNOWN_BOTS: Readonly<Record<string, string>> = {
  seller_audience_discount: 'Avito: personal offer from the seller',
  sbc_seller_notification: 'Avito: buyer accepted the personal offer',
  flower_161071: 'Avito: auto-answers to frequent questions',
};

export function botName(flowId: string | null | undefined): string | null {
  if (!flowId) return null;
  return KNOWN_BOTS[flowId] ?? `Avito bot ${flowId}`;
}
