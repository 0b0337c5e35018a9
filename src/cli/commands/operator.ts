import type { Command } from 'commander';
import { out, pickAccount, withRuntime, type GlobalOptions } from '../context.js';
import { ValidationError } from '../../errors.js';
import { AVITO_MAX_TEXT } from '../../avito/client.js';

function json(opts: { json?: boolean }, data: unknown, text: () => string): void {
  out(opts.json ? JSON.stringify(data, null, 2) : text());
}

/** Operator commands that expose the Avito client directly. */
export function registerOperator(program: Command): void {
  const chats = program.command('chats').description('Avito chats');
  chats
    .command('list')
    .description('list chats from Avito (newest first)')
    .option('--limit <n>', 'how many (1..100)', '20')
    .option('--offset <n>', 'skip this many (0..1000)', '0')
    .option('--unread', 'only unread chats')
    .option('--json', 'print as JSON')
    .action(async (opts: { limit: string; offset: string; unread?: boolean; json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const acc = pickAccount(rt, g.account);
        const list = await acc.client.listChats({ chatTypes: acc.config.avito.chatTypes, limit: intArg('--limit', opts.limit, 1, 100), offset: intArg('--offset', opts.offset, 0, 1000), unreadOnly: Boolean(opts.unread) });
        const uid = await acc.client.userId();
        json(opts, list, () =>
          list.map((c) => {
            const buyer = c.users.find((u) => u.id !== uid);
            return `${c.id}  ${new Date(c.updated * 1000).toISOString()}  ${buyer?.name ?? '?'}  ${c.context?.value?.title ?? ''}`;
          }).join('\n') || '(no chats)');
      });
    });

  const messages = program.command('messages').description('Avito messages');
  messages
    .command('list <chat>')
    .description("list a chat's messages from Avito (newest first); does not mark the chat read")
    .option('--limit <n>', 'how many (1..100)', '20')
    .option('--offset <n>', 'skip this many (0..1000)', '0')
    .option('--json', 'print as JSON')
    .action(async (chat: string, opts: { limit: string; offset: string; json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const acc = pickAccount(rt, g.account);
        const list = await acc.client.listMessages(chat, { limit: intArg('--limit', opts.limit, 1, 100), offset: intArg('--offset', opts.offset, 0, 1000) });
        json(opts, list, () =>
          list.map((m) => `${m.id}  ${new Date(m.created * 1000).toISOString()}  ${m.direction ?? ''}  [${m.type}] ${m.content.text ?? ''}`).join('\n') || '(no messages)');
      });
    });

  program
    .command('send <chat> <text>')
    .description(`send a text message to a chat (at most ${AVITO_MAX_TEXT} characters)`)
    .option('--json', 'print the sent message as JSON')
    .action(async (chat: string, text: string, opts: { json?: boolean }, cmd: Command) => {
      if (text.length === 0 || text.length > AVITO_MAX_TEXT) throw new ValidationError(`The text must hold 1 to ${AVITO_MAX_TEXT} characters; it has ${text.length}.`);
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const sent = await pickAccount(rt, g.account).client.sendText(chat, text);
        json(opts, sent, () => `sent ${sent.id}`);
      });
    });

  program
    .command('delete <chat> <message>')
    .description('delete a message you sent (within one hour of sending)')
    .action(async (chat: string, message: string, _opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        await pickAccount(rt, g.account).client.deleteMessage(chat, message);
        out(`deleted ${message}`);
      });
    });

  program
    .command('blacklist <user>')
    .description('add an Avito user to the blacklist')
    .option('--item <id>', 'the item the user wrote about')
    .option('--reason <n>', '1 spam, 2 fraud, 3 insults, 4 other', '4')
    .action(async (user: string, opts: { item?: string; reason: string }, cmd: Command) => {
      if (!/^\d+$/.test(user)) throw new ValidationError(`USER must be a numeric Avito user id; got "${user}".`);
      const reason = intArg('--reason', opts.reason, 1, 4) as 1 | 2 | 3 | 4;
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        await pickAccount(rt, g.account).client.blacklist(user, { ...(opts.item ? { itemId: opts.item } : {}), reasonId: reason });
        out(`blacklisted ${user}`);
      });
    });
}

export function intArg(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ValidationError(`${name} must be a whole number from ${min} to ${max}; got "${raw}".`);
  return n;
}
