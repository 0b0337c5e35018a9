import { describe, expect, it } from 'vitest';
import { definitionProblem, type ConnectorDefinition, type ConnectorInstance, type ConversationRequest, type DeliveryItem } from '../src/connector-sdk/index.js';
import { CASES, ContractFailure, connectorContract, runCase, runContract, type ContractHarness } from '../src/connector-sdk/testing/index.js';
import { ToyCrm, toyDefinition } from './contract/toy-crm.js';

/**
 * The kit tested on itself: a correct connector passes every case that applies; a copy broken in
 * one way fails the case written to catch that breakage. A case that cannot fail shows up here.
 */

function harness(definition: ConnectorDefinition): ContractHarness<ToyCrm> {
  return {
    definition,
    startFake: async () => {
      const f = new ToyCrm();
      await f.start();
      return f;
    },
    stopFake: (f) => f.stop(),
    config: (f, credentials) => ({ baseUrl: f.url, token: credentials === 'good' ? f.token : 'wrong', webhookSecret: f.webhookSecret }),
    conversationCount: (f) => f.conversations.size,
    conversationTitle: (f, conv) => f.conversations.get(conv.id)?.title,
    deliveredIds: (f, conv) => f.messages.filter((m) => m.conversationId === conv.id).map((m) => m.messageId),
    inject: (f, fault, times) => f.inject({ rate_limited: 429, server_error: 503, bad_request: 400, unauthorized: 401 }[fault], times),
    clearFaults: (f) => f.clearFaults(),
    replies: {
      write: async (f, conv, text) => void f.note(conv.id, `/reply ${text}`, 'manager'),
      writeInternal: async (f, conv, text) => void f.note(conv.id, text, 'internal'),
      outcomes: (f, conv) => f.notes.filter((n) => n.conversationId === conv.id && n.kind === 'outcome').map((n) => n.text),
      reads: (f, conv) => f.notes.filter((n) => n.conversationId === conv.id && n.kind === 'read').map((n) => n.text),
    },
    webhooks: {
      request: async (f, conv, text) => f.note(conv.id, `/reply ${text}`, 'manager'),
      signed: true,
      forgeries: (f, genuine) => [
        { ...genuine, headers: { ...genuine.headers, 'x-toy-signature': 'ab'.repeat(32) } },
        f.sign(genuine.body.toString(), Math.floor(Date.now() / 1000) - 3600),
      ],
    },
    actions: {
      request: async (f, conv) => void f.note(conv.id, 'blacklist this buyer', 'blacklist'),
      reports: (f, conv) => f.notes.filter((n) => n.conversationId === conv.id && n.kind === 'report').map((n) => n.text),
    },
  };
}

const exact = toyDefinition({ findDelivered: true });
const atLeastOnce = toyDefinition({ findDelivered: false });

/** A copy of `def` whose instances are changed by `breakIt`. */
function broken(def: ConnectorDefinition, breakIt: (real: ConnectorInstance) => Partial<ConnectorInstance>): ConnectorDefinition {
  return {
    ...def,
    create: (ctx) => {
      const real = def.create(ctx) as ConnectorInstance & Record<string, unknown>;
      const proto = Object.getPrototypeOf(real) as Record<string, unknown>;
      const bound: Record<string, unknown> = {};
      for (const k of Object.getOwnPropertyNames(proto)) if (typeof proto[k] === 'function' && k !== 'constructor') bound[k] = (proto[k] as (...a: unknown[]) => unknown).bind(real);
      return { ...bound, ...breakIt(real) } as unknown as ConnectorInstance;
    },
  };
}

const BREAKAGES: { name: string; def: ConnectorDefinition; caseName: RegExp }[] = [
  { name: 'checkAccess always fails', def: broken(exact, () => ({ checkAccess: async () => [{ check: 'x', verdict: 'fail', detail: 'no' }] })), caseName: /^checkAccess passes/ },
  { name: 'checkAccess never fails', def: broken(exact, () => ({ checkAccess: async () => [{ check: 'x', verdict: 'ok', detail: 'fine' }] })), caseName: /^checkAccess fails/ },
  {
    name: 'a new conversation on every call',
    def: broken(exact, (real) => ({ ensureConversations: (rs: readonly ConversationRequest[]) => real.ensureConversations(rs.map((r) => ({ ...r, chat: { ...r.chat, chatId: `${r.chat.chatId}-${Math.random()}` } }))) })),
    caseName: /^conversation creation is idempotent/,
  },
  {
    name: 'every chat in the first chat’s conversation',
    def: broken(exact, (real) => ({ ensureConversations: (rs: readonly ConversationRequest[]) => real.ensureConversations(rs.map((r) => ({ ...r, chat: rs[0]!.chat }))) })),
    caseName: /^one conversation per chat/,
  },
  {
    name: 'deliver sends in reverse',
    def: broken(exact, (real) => ({ deliver: async (items: readonly DeliveryItem[]) => (await real.deliver([...items].reverse())).reverse() })),
    caseName: /^delivers in the given order/,
  },
  { name: 'findDelivered finds nothing', def: broken(exact, () => ({ findDelivered: async () => new Map() })), caseName: /^findDelivered tells/ },
  { name: 'findDelivered finds nothing (crash case)', def: broken(exact, () => ({ findDelivered: async () => new Map() })), caseName: /^a crash between/ },
  {
    name: 'without findDelivered, a fresh remote id on every send',
    def: broken(atLeastOnce, (real) => ({ deliver: async (items: readonly DeliveryItem[]) => (await real.deliver(items)).map((r) => (r.ok ? { ok: true as const, value: { remoteId: `${r.value.remoteId}-${Math.random()}` } } : r)) })),
    caseName: /^without findDelivered/,
  },
  {
    name: 'without findDelivered, a fresh remote id on every send (crash case)',
    def: broken(atLeastOnce, (real) => ({ deliver: async (items: readonly DeliveryItem[]) => (await real.deliver(items)).map((r) => (r.ok ? { ok: true as const, value: { remoteId: `${r.value.remoteId}-${Math.random()}` } } : r)) })),
    caseName: /^a crash between/,
  },
  {
    name: 'every failure thrown as a plain Error',
    def: broken(exact, (real) => ({ deliver: (items: readonly DeliveryItem[]) => real.deliver(items).catch(() => { throw new Error('failed'); }) })),
    caseName: /^classifies errors/,
  },
  {
    name: 'replies keep their prefix',
    def: broken(exact, (real) => ({ pollReplies: async (c: string | undefined) => { const r = await real.pollReplies!(c); return { ...r, replies: r.replies.map((x) => ({ ...x, text: `/reply ${x.text}` })) }; } })),
    caseName: /^replies: a manager's reply/,
  },
  {
    name: 'internal notes taken as replies',
    def: broken(exact, (real) => ({ pollReplies: async (c: string | undefined) => { const r = await real.pollReplies!(c); return { ...r, replies: [...r.replies, { remoteId: 'n', conversationId: 'x', text: 'internal: check the package', attachments: [], createdAt: 0 }] }; } })),
    caseName: /^replies: a manager's reply/,
  },
  { name: 'updateConversations renames nothing', def: broken(exact, () => ({ updateConversations: async (us: readonly unknown[]) => us.map(() => ({ ok: true as const, value: undefined })) })), caseName: /^updateConversations:/ },
  { name: 'updateConversations missing', def: broken(exact, () => ({ updateConversations: undefined })), caseName: /^updateConversations:/ },
  { name: 'markRead shows nothing', def: broken(exact, () => ({ markRead: async () => undefined })), caseName: /^read receipts:/ },
  { name: 'markRead missing', def: broken(exact, () => ({ markRead: undefined })), caseName: /^read receipts:/ },
  { name: 'reportReplies writes nothing', def: broken(exact, () => ({ reportReplies: async () => undefined })), caseName: /^replies: each fate/ },
  { name: 'webhook refuses everything', def: broken(exact, () => ({ webhook: async () => ({ accepted: false, status: 401, reason: 'no' }) })), caseName: /^webhooks: a genuine call/ },
  { name: 'webhook checks no signature', def: broken(exact, () => ({ webhook: async () => ({ accepted: true, replies: [] }) })), caseName: /^webhooks: forged/ },
  { name: 'pollActions finds nothing', def: broken(exact, () => ({ pollActions: async () => ({ actions: [], cursor: '0' }) })), caseName: /^actions:/ },
  { name: 'reportAction writes nothing', def: broken(exact, () => ({ reportAction: async () => undefined })), caseName: /^actions:/ },
];

describe('the contract kit on its own', () => {
  it('a correct connector with findDelivered passes every case (none skipped but the at-least-once one)', async () => {
    const results = await runContract(harness(exact));
    expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(results.filter((r) => r.status === 'skipped').map((r) => r.name)).toEqual([expect.stringMatching(/^without findDelivered/)]);
  });

  it('a correct connector without findDelivered passes, checked for at-least-once with a stable id instead', async () => {
    const results = await runContract(harness(atLeastOnce));
    expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(results.filter((r) => r.status === 'skipped').map((r) => r.name)).toEqual([expect.stringMatching(/^findDelivered tells/)]);
  });

  it.each(BREAKAGES)('catches a connector whose $name', async ({ def, caseName }) => {
    const c = CASES.find((x) => caseName.test(x.name));
    expect(c, String(caseName)).toBeDefined();
    await expect(runCase(harness(def), c!)).rejects.toThrow(ContractFailure);
  });

  it('every case is shown to catch at least one breakage', () => {
    const caught = new Set(CASES.filter((c) => BREAKAGES.some((b) => b.caseName.test(c.name))).map((c) => c.name));
    expect(CASES.map((c) => c.name).filter((n) => !caught.has(n))).toEqual([]);
  });

  it('a capability without its harness section fails rather than passing unchecked', async () => {
    const { replies: _r, actions: _a, webhooks: _w, conversationTitle: _t, ...bare } = harness(exact);
    const results = await runContract(bare);
    const failed = results.filter((r) => r.status === 'failed').map((r) => r.detail);
    expect(failed.length).toBe(7);
    expect(failed.every((d) => /the kit cannot check it/.test(d ?? ''))).toBe(true);
  });
});

describe('a loaded connector module', () => {
  it('built against an SDK without updateConversations passes (it means false); a value that is not true or false is refused, naming it', () => {
    const { updateConversations: _u, ...older } = exact.capabilities;
    expect(definitionProblem({ ...exact, capabilities: older })).toBeUndefined();
    expect(definitionProblem({ ...exact, capabilities: { ...exact.capabilities, updateConversations: 'yes' } })).toMatch(/capabilities\.updateConversations must be true or false/);
  });
});

connectorContract(harness(exact));
connectorContract(harness(atLeastOnce));
