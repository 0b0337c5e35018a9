import { isDeepStrictEqual } from 'node:util';
import type {
  ChatInfo, ConnectorDefinition, ConnectorInstance, ConversationRef, DeliveryItem, IncomingReply, ItemResult, OutgoingMessage, WebhookRequest,
} from '../contract.js';
import { createTestBench, type TestBench } from './harness.js';

/**
 * The contract cases, as plain functions: each throws a ContractFailure saying what the
 * connector did wrong. `connectorContract` (kit.ts) registers them with vitest; `runContract`
 * runs them without a test runner (the kit's own tests break connectors on purpose with it).
 */

/** What a connector's test tells the kit about its fake CRM. */
export interface ContractHarness<Fake> {
  definition: ConnectorDefinition;
  startFake(): Promise<Fake>;
  stopFake(fake: Fake): Promise<void>;
  /** The connector's config section for this fake: good or bad credentials. */
  config(fake: Fake, credentials: 'good' | 'bad'): Record<string, unknown>;
  /** Message ids delivered into a conversation, in the CRM's order, repeats included. */
  deliveredIds(fake: Fake, conversation: ConversationRef): string[];
  /** How many conversations (e.g. leads) the fake CRM holds. Without it the kit compares ids only. */
  conversationCount?(fake: Fake): number;
  /** Makes the fake fail the next `times` requests in this way. */
  inject(fake: Fake, fault: 'rate_limited' | 'server_error' | 'bad_request' | 'unauthorized', times: number): void;
  /** Drops faults not yet used. */
  clearFaults(fake: Fake): void;
  /**
   * Required with capability `updateConversations`: the name the CRM shows for a conversation (a
   * lead's name, a deal's title), or undefined when it holds no such conversation.
   */
  conversationTitle?(fake: Fake, conversation: ConversationRef): string | undefined;
  /** Required with capability `replies`. */
  replies?: {
    /**
     * A manager writes `text` as a reply to the buyer (with whatever prefix the CRM needs). Returns
     * the webhook the CRM sends about it, if replies arrive by webhook rather than by polling.
     */
    write(fake: Fake, conversation: ConversationRef, text: string): Promise<WebhookRequest | void>;
    /** A manager writes an internal note that must never reach the buyer (where the CRM has them). */
    writeInternal?(fake: Fake, conversation: ConversationRef, text: string): Promise<WebhookRequest | void>;
    /** Texts the connector wrote back into the conversation about replies' fates, in order. */
    outcomes(fake: Fake, conversation: ConversationRef): string[];
    /** Required with capability `readReceipts`: the replies' CRM ids the fake shows as read, repeats included. */
    reads?(fake: Fake, conversation: ConversationRef): string[];
  };
  /** Required when the connector has `webhook()`. */
  webhooks?: {
    /** A genuine call from the CRM carrying a reply `text` in `conversation`. */
    request(fake: Fake, conversation: ConversationRef, text: string): Promise<WebhookRequest>;
    /** The CRM signs its calls: the kit then also expects a request with one body byte changed to be refused. */
    signed: boolean;
    /** Forged variants of a genuine request (a wrong signature, a stale timestamp...): each must be refused. */
    forgeries?(fake: Fake, genuine: WebhookRequest): WebhookRequest[];
  };
  /** Required with capability `actions`. */
  actions?: {
    /** An operator asks for a blacklist in the CRM on this conversation. */
    request(fake: Fake, conversation: ConversationRef): Promise<void>;
    /** Texts the connector wrote back about actions, in order. */
    reports(fake: Fake, conversation: ConversationRef): string[];
  };
}

/** A contract case failed: the message says what the connector did and what was expected. */
export class ContractFailure extends Error {
  override readonly name = 'ContractFailure';
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ContractFailure(message);
}

function same(actual: unknown, expected: unknown, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) throw new ContractFailure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function value<T>(r: ItemResult<T> | undefined, what: string): T {
  check(r, `${what}: no result returned`);
  if (!r.ok) throw new ContractFailure(`${what} failed: ${r.error instanceof Error ? r.error.message : String(r.error)}`);
  return r.value;
}

/** A chat as the core describes it. */
export function chat(n: number, buyer = n): ChatInfo {
  return {
    accountId: 'default',
    chatId: `u2i-contract-${n}`,
    chatType: 'u2i',
    item: { id: String(1000 + n), title: `Item ${n}`, url: `https://www.avito.ru/item_${n}`, price: `${n} 000 ₽` },
    buyer: { id: String(5000 + buyer), name: `Buyer ${buyer}`, url: null },
    chatUrl: `https://www.avito.ru/profile/messenger/channel/u2i-contract-${n}`,
  };
}

/** `chat(n)` as a webhook makes it known, before Avito gave its details: no buyer, no item title. */
export function chatWithoutDetails(n: number): ChatInfo {
  const c = chat(n);
  return { ...c, item: { ...c.item, title: null, url: null, price: null }, buyer: { id: null, name: null, url: null } };
}

/** A buyer's text message as the core hands it to `deliver`. */
export function message(id: string, chatId: string, created: number, text = `text of ${id}`): OutgoingMessage {
  return { messageId: id, chatId, created, type: 'text', author: { kind: 'buyer', name: 'Buyer' }, text, content: { text }, voiceUrl: null, first: false };
}

/** What a case gets: the fake, a ledger-backed bench, and a way to make instances. */
export interface CaseEnv<Fake> {
  h: ContractHarness<Fake>;
  fake: Fake;
  bench: TestBench;
  make(credentials?: 'good' | 'bad'): ConnectorInstance;
}

export interface ContractCase {
  name: string;
  /** Undefined when the case applies to this definition, else why it does not. */
  skip?(def: ConnectorDefinition): string | undefined;
  run<Fake>(env: CaseEnv<Fake>): Promise<void>;
}

function maxBatch(def: ConnectorDefinition, c: ConnectorInstance): number {
  return Math.max(1, Math.min(def.capabilities.maxBatch, c.limits?.maxBatch ?? Infinity));
}

async function conversations(def: ConnectorDefinition, c: ConnectorInstance, chats: ChatInfo[]): Promise<ConversationRef[]> {
  const per = Math.max(1, Math.min(def.capabilities.maxConversationBatch, c.limits?.maxConversationBatch ?? Infinity));
  const out: ConversationRef[] = [];
  for (let k = 0; k < chats.length; k += per) {
    const part = chats.slice(k, k + per);
    const res = await c.ensureConversations(part.map((x) => ({ chat: x, previous: undefined, buyerWrote: true })));
    same(res.length, part.length, 'ensureConversations returns one result per request');
    res.forEach((r, i) => out.push(value(r, `ensureConversations for ${part[i]!.chatId}`)));
  }
  return out;
}

async function deliverAll(def: ConnectorDefinition, c: ConnectorInstance, items: DeliveryItem[]): Promise<string[]> {
  const ids: string[] = [];
  const per = maxBatch(def, c);
  for (let k = 0; k < items.length; k += per) {
    const part = items.slice(k, k + per);
    const res = await c.deliver(part);
    same(res.length, part.length, 'deliver returns one result per item');
    res.forEach((r, i) => ids.push(value(r, `deliver ${part[i]!.message.messageId}`).remoteId));
  }
  return ids;
}

/** Replies the connector reports for what the fake just did: by webhook when it sent one, else by polling. */
async function repliesAfter(c: ConnectorInstance, sent: WebhookRequest | void, cursor: string | undefined): Promise<{ replies: IncomingReply[]; cursor: string | undefined }> {
  if (sent) {
    check(c.webhook, 'the harness says replies arrive by webhook, but the connector has no webhook()');
    const v = await c.webhook(sent);
    check(v.accepted, `a genuine reply webhook was refused: ${v.accepted ? '' : `${v.status} ${v.reason}`}`);
    return { replies: [...(v.replies ?? []), ...((await v.later?.()) ?? [])], cursor };
  }
  check(c.pollReplies, 'capability `replies` without pollReplies, and the harness sends no webhook');
  return c.pollReplies(cursor);
}

const TEST_REPLY = 'Да, продаётся. Reply from the contract kit';

export const CASES: readonly ContractCase[] = [
  {
    name: 'checkAccess passes with good credentials',
    async run({ make }) {
      const checks = await make('good').checkAccess();
      same(checks.filter((x) => x.verdict === 'fail'), [], 'failed checks with good credentials');
    },
  },
  {
    name: 'checkAccess fails with bad credentials and says what to do',
    async run({ make }) {
      const checks = await make('bad').checkAccess();
      const failed = checks.find((x) => x.verdict === 'fail');
      check(failed, `no failed check with bad credentials: ${JSON.stringify(checks)}`);
      check(/token|credential|key|auth|secret|password/i.test(failed.action ?? failed.detail), `the failed check does not say what to do about credentials: ${JSON.stringify(failed)}`);
    },
  },
  {
    name: 'conversation creation is idempotent, also when the ledger lost the result',
    async run({ h, fake, make }) {
      const c = make();
      const [ref] = await conversations(h.definition, c, [chat(1)]);
      const again = value((await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]))[0], 'ensureConversations with previous');
      same(again.id, ref!.id, 'given `previous`, the same conversation');
      // A crash between the CRM call and the ledger write: the core asks again without `previous`.
      const lost = value((await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]))[0], 'ensureConversations after a lost result');
      same(lost.id, ref!.id, 'asked again without `previous`, the same conversation');
      if (h.conversationCount) same(h.conversationCount(fake), 1, 'conversations in the CRM');
    },
  },
  {
    name: 'one conversation per chat, many chats per call',
    async run({ h, fake, make }) {
      const refs = await conversations(h.definition, make(), [1, 2, 3].map((n) => chat(n, 7)));
      same(new Set(refs.map((r) => r.id)).size, 3, 'distinct conversations for three chats of one buyer');
      if (h.conversationCount) same(h.conversationCount(fake), 3, 'conversations in the CRM');
    },
  },
  {
    name: 'delivers in the given order',
    async run({ h, fake, make }) {
      const c = make();
      const convs = await conversations(h.definition, c, [chat(1), chat(2)]);
      // Runs of one chat and interleaved chats, as the core sends them (each chat in order).
      const which = [0, 0, 1, 1, 0, 1, 0, 1];
      const items: DeliveryItem[] = which.map((w, i) => ({ conversation: convs[w]!, chat: chat(w + 1), message: message(`m${i}`, chat(w + 1).chatId, 1_700_000_000 + i) }));
      await deliverAll(h.definition, c, items);
      same(h.deliveredIds(fake, convs[0]!), ['m0', 'm1', 'm4', 'm6'], 'messages in the first conversation');
      same(h.deliveredIds(fake, convs[1]!), ['m2', 'm3', 'm5', 'm7'], 'messages in the second conversation');
    },
  },
  {
    name: 'findDelivered tells what reached the CRM, so a crash does not send again',
    skip: (def) => (def.capabilities.findDelivered ? undefined : 'capability findDelivered is false'),
    async run({ h, make }) {
      const c = make();
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const sent = ['a', 'b', 'c'].map((id, i) => ({ conversation: conv!, chat: chat(1), message: message(id, chat(1).chatId, 1_700_000_000 + i) }));
      const remote = await deliverAll(h.definition, c, sent);
      const found = await c.findDelivered([...sent, { conversation: conv!, chat: chat(1), message: message('d', chat(1).chatId, 1_700_000_010) }]);
      same([...found.keys()].sort(), ['a', 'b', 'c'], 'findDelivered: the delivered ids, not the undelivered one');
      same(['a', 'b', 'c'].map((id) => found.get(id)), remote, 'findDelivered: the remote ids deliver returned');
    },
  },
  {
    name: 'without findDelivered: a message sent again carries the same remote id (at-least-once, deduplicable)',
    skip: (def) => (def.capabilities.findDelivered ? 'capability findDelivered is true' : undefined),
    async run({ h, fake, make }) {
      const c = make();
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const item = { conversation: conv!, chat: chat(1), message: message('again', chat(1).chatId, 1_700_000_000) };
      const [first] = await deliverAll(h.definition, c, [item]);
      const [second] = await deliverAll(h.definition, make(), [item]);
      same(second, first, 'the remote id of the same message sent twice (the receiver dedupes by it)');
      const seen = h.deliveredIds(fake, conv!).filter((id) => id === 'again').length;
      check(seen >= 1, 'the message is not in the CRM');
    },
  },
  {
    name: 'a crash between the CRM call and the ledger write: the dispatcher reconciles, nothing is lost or doubled beyond the contract',
    async run({ h, fake, bench, make }) {
      const real = make();
      const remoteFirst = new Map<string, string>();
      const crashing: ConnectorInstance = {
        ...real,
        checkAccess: () => real.checkAccess(),
        ensureConversations: (r) => real.ensureConversations(r),
        findDelivered: (i) => real.findDelivered(i),
        close: () => real.close(),
        deliver: async (items) => {
          const res = await real.deliver(items);
          res.forEach((r, i) => r.ok && remoteFirst.set(items[i]!.message.messageId, r.value.remoteId));
          throw new Error('process died before the ledger write');
        },
      };
      await bench.dispatch(h.definition, crashing);
      const after = await bench.dispatch(h.definition, real);
      const expected = ['c0m0', 'c0m1', 'c0m2', 'c1m0', 'c1m1', 'c1m2'];
      same(after.conversations.length, 2, 'conversations in the ledger');
      const ids = after.conversations.flatMap((ref) => h.deliveredIds(fake, ref));
      same([...after.remoteIds.keys()].sort(), expected, 'messages the ledger records as delivered');
      if (h.definition.capabilities.findDelivered) {
        same(ids.sort(), expected, 'messages in the CRM (each exactly once)');
        check(remoteFirst.size > 0, 'nothing reached the CRM before the crash');
        same(after.reconciled, remoteFirst.size, 'deliveries reconciled through findDelivered instead of sent again (all that reached the CRM before the crash)');
        for (const [id, remote] of remoteFirst) same(after.remoteIds.get(id), remote, `remote id of ${id} found after the crash`);
      } else {
        same([...new Set(ids)].sort(), expected, 'messages in the CRM (at least once each)');
        for (const [id, remote] of remoteFirst) same(after.remoteIds.get(id), remote, `remote id of ${id} after the re-send`);
      }
    },
  },
  {
    name: 'classifies errors: rate limits and 5xx are retried, a bad request is final, refused credentials stop the run',
    async run({ h, fake, bench, make }) {
      const c = make();
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      let n = 0;
      const one = () =>
        c.deliver([{ conversation: conv!, chat: chat(1), message: message(`fault-${n++}`, chat(1).chatId, 1_700_000_000) }]).then(
          (res) => (res[0]?.ok ? undefined : (res[0] as { error: unknown } | undefined)?.error),
          (e: unknown) => e,
        );
      const cases = [['rate_limited', 'transient'], ['server_error', 'transient'], ['bad_request', 'permanent'], ['unauthorized', 'halt']] as const;
      for (const [fault, expected] of cases) {
        h.inject(fake, fault, 100);
        const err = await one();
        h.clearFaults(fake);
        check(err !== undefined, `with ${fault} injected, deliver reported success`);
        same(bench.classify(err), expected, `how the core handles ${fault} (${err instanceof Error ? err.message : String(err)})`);
      }
    },
  },
  {
    name: "replies: a manager's reply is found once, without its prefix; internal notes stay in the CRM",
    skip: (def) => (def.capabilities.replies ? undefined : 'capability replies is false'),
    async run({ h, fake, make }) {
      check(h.replies, 'capability `replies` is on but the harness has no `replies` section: the kit cannot check it');
      const c = make();
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const start = c.pollReplies ? (await c.pollReplies(undefined)).cursor : undefined;
      const internal = h.replies.writeInternal ? await h.replies.writeInternal(fake, conv!, 'internal: check the package') : undefined;
      const internalSeen = h.replies.writeInternal ? await repliesAfter(c, internal, start) : undefined;
      const sent = await h.replies.write(fake, conv!, TEST_REPLY);
      const first = await repliesAfter(c, sent, internalSeen?.cursor ?? start);
      const all = [...(internalSeen?.replies ?? []), ...first.replies];
      check(!all.some((r) => r.text.includes('internal: check the package')), `an internal note was taken as a reply: ${JSON.stringify(all)}`);
      const mine = first.replies.filter((r) => r.text.includes('Reply from the contract kit'));
      same(mine.length, 1, 'replies found for one written reply');
      same(mine[0]!.text, TEST_REPLY, 'the reply text, without the prefix');
      check(mine[0]!.conversationId === conv!.id || mine[0]!.chatId === chat(1).chatId, `the reply names neither its conversation (${conv!.id}) nor its chat: ${JSON.stringify(mine[0])}`);
      check(mine[0]!.remoteId, 'the reply has no remoteId');
      if (!sent && c.pollReplies) {
        const again = await c.pollReplies(first.cursor);
        for (const r of again.replies.filter((x) => x.text === TEST_REPLY)) same(r.remoteId, mine[0]!.remoteId, 'a reply seen again keeps its remoteId (the core takes each id once)');
      }
    },
  },
  {
    name: 'replies: each fate is written back, the failure with its reason, never repeating the reply',
    skip: (def) => (def.capabilities.replies ? undefined : 'capability replies is false'),
    async run({ h, fake, make }) {
      check(h.replies, 'capability `replies` is on but the harness has no `replies` section: the kit cannot check it');
      const c = make();
      check(c.reportReplies, 'capability `replies` without reportReplies');
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const before = h.replies.outcomes(fake, conv!).length;
      await c.reportReplies([
        { conversation: conv!, remoteId: 'kit-reply-1', outcome: { sent: true, parts: 1 } },
        { conversation: conv!, remoteId: 'kit-reply-2', outcome: { sent: false, reason: 'the chat is closed on Avito' } },
      ]);
      const now = h.replies.outcomes(fake, conv!).slice(before);
      same(now.length, 2, 'outcomes written for two replies');
      check(now.some((t) => t.includes('the chat is closed on Avito')), `the failed outcome does not say why: ${JSON.stringify(now)}`);
      check(!now.some((t) => t.includes('Reply from the contract kit')), 'an outcome repeats the reply text');
    },
  },
  {
    name: 'read receipts: a reply the buyer read is shown read in the CRM, once per call (unless the instance turns them off)',
    skip: (def) => (def.capabilities.readReceipts ? undefined : 'capability readReceipts is false'),
    async run({ h, fake, make }) {
      check(h.replies, 'capability `readReceipts` is on but the harness has no `replies` section: the kit cannot check it');
      const c = make();
      // A mode of the connector that cannot show reads says so in its limits; the core then never asks.
      if (c.limits?.readReceipts === false) return;
      check(c.markRead, 'capability `readReceipts` without markRead');
      check(h.replies.reads, 'capability `readReceipts` is on but the harness has no `replies.reads`: the kit cannot check it');
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const start = c.pollReplies ? (await c.pollReplies(undefined)).cursor : undefined;
      const sent = await h.replies.write(fake, conv!, TEST_REPLY);
      const found = (await repliesAfter(c, sent, start)).replies.find((r) => r.text === TEST_REPLY);
      check(found, 'the reply written for the read receipt was not found');
      const before = h.replies.reads(fake, conv!).filter((id) => id === found.remoteId).length;
      await c.markRead([{ conversation: conv!, remoteId: found.remoteId, readAt: Date.now() }]);
      same(h.replies.reads(fake, conv!).filter((id) => id === found.remoteId).length - before, 1, 'read marks shown for one read reply');
    },
  },
  {
    name: "updateConversations: a conversation made before its chat's details arrived is named after them; a repeat changes nothing",
    skip: (def) => (def.capabilities.updateConversations ? undefined : 'capability updateConversations is false'),
    async run({ h, fake, make }) {
      check(h.conversationTitle, 'capability `updateConversations` is on but the harness has no `conversationTitle`: the kit cannot check it');
      const c = make();
      // A mode of the connector that cannot rename says so in its limits; the core then never asks.
      if (c.limits?.updateConversations === false) return;
      check(c.updateConversations, 'capability `updateConversations` without updateConversations');
      const [conv] = await conversations(h.definition, c, [chatWithoutDetails(1)]);
      const named = (t: string | undefined) => Boolean(t && (t.includes('Item 1') || t.includes('Buyer 1')));
      check(!named(h.conversationTitle(fake, conv!)), `made without details, the conversation is already named after them: ${h.conversationTitle(fake, conv!)}`);
      const res = await c.updateConversations([{ conversation: conv!, chat: chat(1) }]);
      same(res.length, 1, 'updateConversations returns one result per update');
      value(res[0], 'updateConversations');
      const after = h.conversationTitle(fake, conv!);
      check(named(after), `after updateConversations the conversation is not named after the item or the buyer: ${after}`);
      // After a crash the core asks again (from a new instance): done already, it changes nothing.
      value((await make().updateConversations!([{ conversation: conv!, chat: chat(1) }]))[0], 'updateConversations repeated');
      same(h.conversationTitle(fake, conv!), after, 'the name after a repeated update');
      if (h.conversationCount) same(h.conversationCount(fake), 1, 'conversations in the CRM');
    },
  },
  {
    name: 'webhooks: a genuine call is accepted and says what it carries',
    skip: (def) => (def.capabilities.webhooks ? undefined : 'capability webhooks is false'),
    async run({ h, fake, make }) {
      const c = make();
      check(c.webhook, 'capability `webhooks` without webhook()');
      check(h.webhooks, 'the connector has webhook() but the harness has no `webhooks` section: the kit cannot check it');
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const req = await h.webhooks.request(fake, conv!, TEST_REPLY);
      const v = await c.webhook(req);
      check(v.accepted, `a genuine webhook was refused: ${v.accepted ? '' : `${v.status} ${v.reason}`}`);
      if (h.definition.capabilities.replies) {
        const replies = [...(v.replies ?? []), ...((await v.later?.()) ?? [])];
        check(replies.some((r) => r.text === TEST_REPLY), `the genuine webhook's reply is missing: ${JSON.stringify(replies)}`);
      }
    },
  },
  {
    name: 'webhooks: forged or malformed calls are refused with a 4xx and carry nothing',
    skip: (def) => (def.capabilities.webhooks ? undefined : 'capability webhooks is false'),
    async run({ h, fake, make }) {
      const c = make();
      check(c.webhook, 'capability `webhooks` without webhook()');
      check(h.webhooks, 'the connector has webhook() but the harness has no `webhooks` section: the kit cannot check it');
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const genuine = await h.webhooks.request(fake, conv!, TEST_REPLY);
      const bad: [string, WebhookRequest][] = [['a body that is not what the CRM sends', { ...genuine, body: Buffer.from('\u0000not a webhook{') }]];
      if (h.webhooks.signed) {
        const flipped = Buffer.from(genuine.body);
        flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0x01;
        bad.push(['one body byte changed after signing', { ...genuine, body: flipped }]);
      }
      (h.webhooks.forgeries?.(fake, genuine) ?? []).forEach((r, i) => bad.push([`forgery ${i + 1} from the harness`, r]));
      for (const [what, req] of bad) {
        let v;
        try {
          v = await c.webhook(req);
        } catch (err) {
          throw new ContractFailure(`webhook() threw for ${what} instead of refusing it: ${err instanceof Error ? err.message : String(err)}`);
        }
        check(!v.accepted, `${what}: accepted`);
        check(v.status >= 400 && v.status < 500, `${what}: refused with ${v.status}, not a 4xx`);
      }
    },
  },
  {
    name: 'actions: an operator action is found and its outcome written back',
    skip: (def) => (def.capabilities.actions ? undefined : 'capability actions is false'),
    async run({ h, fake, make }) {
      check(h.actions, 'capability `actions` is on but the harness has no `actions` section: the kit cannot check it');
      const c = make();
      check(c.pollActions && c.reportAction, 'capability `actions` without pollActions and reportAction');
      const [conv] = await conversations(h.definition, c, [chat(1)]);
      const start = (await c.pollActions(undefined)).cursor;
      await h.actions.request(fake, conv!);
      const { actions } = await c.pollActions(start);
      check(actions.some((a) => a.conversationId === conv!.id && a.action === 'blacklist'), `the blacklist asked for on ${conv!.id} was not found: ${JSON.stringify(actions)}`);
      const before = h.actions.reports(fake, conv!).length;
      await c.reportAction(conv!, 'blacklist', { done: false, reason: 'Avito refused: the buyer is gone' });
      const now = h.actions.reports(fake, conv!).slice(before);
      same(now.length, 1, 'reports written for one action');
      check(now[0]!.includes('Avito refused: the buyer is gone'), `the report does not say why: ${JSON.stringify(now)}`);
    },
  },
];

export interface CaseResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Why it failed or was skipped. */
  detail?: string;
}

/** Runs one case on a fresh fake and ledger. Throws what the case threw. */
export async function runCase<Fake>(h: ContractHarness<Fake>, c: ContractCase): Promise<void> {
  const fake = await h.startFake();
  const bench = await createTestBench();
  const made: ConnectorInstance[] = [];
  const make = (credentials: 'good' | 'bad' = 'good'): ConnectorInstance => {
    const instance = h.definition.create(bench.context(h.definition, h.config(fake, credentials)));
    made.push(instance);
    return instance;
  };
  try {
    await c.run({ h, fake, bench, make });
  } finally {
    for (const m of made) await m.close().catch(() => undefined);
    await bench.close();
    await h.stopFake(fake);
  }
}

/** Runs every case without a test runner and says how each went. */
export async function runContract<Fake>(h: ContractHarness<Fake>): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of CASES) {
    const why = c.skip?.(h.definition);
    if (why) {
      out.push({ name: c.name, status: 'skipped', detail: why });
      continue;
    }
    try {
      await runCase(h, c);
      out.push({ name: c.name, status: 'passed' });
    } catch (err) {
      out.push({ name: c.name, status: 'failed', detail: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}
