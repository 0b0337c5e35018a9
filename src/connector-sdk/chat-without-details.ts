import type { ChatInfo } from './contract.js';

/**
 * The chat as a connector saw it before its details came (a webhook gives neither the buyer's
 * name nor the item's title nor its price), in the two forms it may have had: with the buyer's id,
 * and without it. A connector that names a conversation after the chat maps these through its
 * own naming to recognise a placeholder name it gave, and renames only while it still holds one
 * (`updateConversations`), so a name a manager typed stays.
 */
export function chatWithoutDetails(chat: ChatInfo): ChatInfo[] {
  const bare = { ...chat, item: { ...chat.item, title: null, price: null }, buyer: { ...chat.buyer, name: null } };
  return [bare, { ...bare, buyer: { ...bare.buyer, id: null } }];
}
