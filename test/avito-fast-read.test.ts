import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  avitoChatListSchema, avitoChatSchema, avitoMessageListSchema, avitoMessageSchema, readAvitoChat, readAvitoMessage, readChatList, readContent, readMessageList, type AvitoMessageContent,
} from '../src/avito/schemas.js';

/**
 * The import's fast message reader (issue 13 item 1) must read exactly what the schema reads:
 * for every message it accepts, the schema accepts it too and gives the same result; a message it
 * is unsure of goes to the schema, which names the reason.
 */

// The content reader as it was before the one-pass rewrite: the reference the new one must match.
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const idStr = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const pick = <T extends Obj>(v: unknown, read: (o: Obj) => T): T | undefined => (isObj(v) ? read(v) : undefined);
function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
function defined<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}
const readPreview = (o: Obj) => defined({ ...o, url: str(o.url), domain: str(o.domain), title: str(o.title), description: str(o.description), images: isObj(o.images) ? strings(o.images) : undefined });
function previousReadContent(raw: unknown): AvitoMessageContent {
  if (!isObj(raw)) return {};
  const out: AvitoMessageContent = { ...raw };
  const typed: Partial<AvitoMessageContent> = {
    text: str(raw.text),
    flow_id: str(raw.flow_id),
    image: pick(raw.image, (o) => ({ sizes: strings(o.sizes) })),
    voice: pick(raw.voice, (o) => defined({ voice_id: str(o.voice_id) })),
    link: pick(raw.link, (o) => defined({ ...o, text: str(o.text), url: str(o.url), preview: pick(o.preview, readPreview) })),
    item: pick(raw.item, (o) => defined({ title: str(o.title), price_string: str(o.price_string), item_url: str(o.item_url), image_url: str(o.image_url) })),
    location: pick(raw.location, (o) => defined({ lat: num(o.lat), lon: num(o.lon), text: str(o.text), title: str(o.title), kind: str(o.kind) })),
    call: pick(raw.call, (o) => defined({ status: str(o.status), target_user_id: idStr(o.target_user_id) })),
  };
  for (const [k, v] of Object.entries(typed)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * Runs `fast` and `schema` on `runs` generated values: wherever `fast` accepts one, the schema
 * accepts it too with the same result (and `also` holds). Returns how many `fast` accepted.
 */
function agreesWithSchema<T>(arb: fc.Arbitrary<unknown>, fast: (raw: unknown) => T | undefined, schema: z.ZodType<T>, runs: number, also: (fast: T, slow: T) => void): number {
  let accepted = 0;
  fc.assert(
    fc.property(arb, (raw) => {
      const quick = fast(raw);
      if (quick === undefined) return;
      accepted++;
      const slow = schema.safeParse(raw);
      expect(slow.success).toBe(true);
      expect(quick).toEqual(slow.data);
      also(quick, slow.data!);
    }),
    { numRuns: runs },
  );
  return accepted;
}

const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.dictionary(fc.string(), fc.string()));
const content = fc.oneof(
  fc.record({ text: fc.string() }),
  fc.record({ text: anyValue, flow_id: anyValue }, { requiredKeys: [] }),
  fc.record({ voice: fc.oneof(fc.record({ voice_id: anyValue }, { requiredKeys: [] }), anyValue) }),
  fc.record({ link: fc.oneof(fc.record({ text: anyValue, url: anyValue, preview: fc.oneof(anyValue, fc.record({ title: anyValue, images: anyValue, extra: anyValue }, { requiredKeys: [] })) }, { requiredKeys: [] }), anyValue) }),
  fc.record({ item: fc.oneof(fc.record({ title: anyValue, price_string: anyValue, other: anyValue }, { requiredKeys: [] }), anyValue) }),
  fc.record({ location: fc.oneof(fc.record({ lat: anyValue, lon: anyValue, kind: anyValue }, { requiredKeys: [] }), anyValue) }),
  fc.record({ call: fc.oneof(fc.record({ status: anyValue, target_user_id: anyValue }, { requiredKeys: [] }), anyValue) }),
  fc.record({ image: fc.oneof(fc.record({ sizes: anyValue }), anyValue), unknown_field: anyValue }, { requiredKeys: [] }),
  anyValue,
  fc.anything(),
);
const idValue = fc.oneof(fc.string(), fc.integer(), fc.constant(2 ** 60), fc.double(), fc.constant(''), fc.constant(null), fc.constant(undefined));
const message = fc.record(
  {
    id: idValue,
    author_id: idValue,
    created: fc.oneof(fc.integer({ min: 946_684_800, max: 4_102_444_800 }), fc.integer(), fc.double(), fc.string(), fc.constant(1e308)),
    direction: anyValue,
    type: fc.oneof(fc.constantFrom('text', 'voice', 'link', 'system', 'deleted'), anyValue),
    content,
    quote: anyValue,
    is_read: anyValue,
    isRead: anyValue,
    delivered: anyValue,
    read: anyValue,
    extra_field: anyValue,
  },
  { requiredKeys: [] },
);

describe('fast Avito message reader', () => {
  it('reads content exactly as the previous reader did, key order included', () => {
    fc.assert(
      fc.property(content, (c) => {
        expect(JSON.stringify(readContent(c))).toBe(JSON.stringify(previousReadContent(c)));
        expect(readContent(c)).toEqual(previousReadContent(c));
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the schema’s result for every message it accepts, and leaves the rest to the schema', () => {
    const accepted = agreesWithSchema(message, readAvitoMessage, avitoMessageSchema, 1500, (fast, slow) => {
      expect(JSON.stringify(fast.content)).toBe(JSON.stringify(slow.content));
    });
    expect(accepted).toBeGreaterThan(0);
  });

  it('accepts the usual message shapes without the schema', () => {
    const usual = [
      { id: 'm1', author_id: 42, created: 1_700_000_000, type: 'text', direction: 'in', content: { text: 'hi' }, isRead: true, delivered: true },
      { id: 'm2', author_id: '0', created: 1_700_000_001, type: 'system', content: { text: '[Системное сообщение] …' }, is_read: false, read: 1_700_000_005 },
      { id: 'm3', author_id: 7, created: 1_700_000_002, type: 'link', content: { link: { text: 't', url: 'https://x', preview: { title: 'T', images: { '64x64': 'u' } } } } },
    ];
    for (const m of usual) {
      const fast = readAvitoMessage(m);
      expect(fast).toBeDefined();
      expect(fast).toEqual(avitoMessageSchema.parse(m));
    }
  });

  it('keeps a `__proto__` key of a payload as data', () => {
    const raw = JSON.parse('{"id":"m","created":1700000000,"content":{"text":"x","__proto__":{"polluted":1}},"__proto__":{"p":2}}') as unknown;
    const m = readAvitoMessage(raw)!;
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(m.content)).toBe(Object.prototype);
    expect(JSON.stringify(m.content)).toBe('{"text":"x","__proto__":{"polluted":1}}');
    expect(Object.hasOwn(m, '__proto__')).toBe(true);
  });

  it('reads a messages list as the schema does, and leaves any other shape to it', () => {
    const messages = [{ id: 'm1', created: 1_700_000_000, content: { text: 'hi' } }];
    for (const page of [messages, { messages }, { messages, meta: { total: 1 } }, []]) {
      expect(readMessageList(page)).toEqual(avitoMessageListSchema.parse(page));
    }
    for (const other of [{ messages: null }, {}, { messages: 'x' }, null, 'x', 5]) expect(readMessageList(other)).toBeUndefined();
  });
});

/** The chat reader of the same pass (issue 13 item 1): the schema's result for every chat it accepts. */
describe('the fast chat reader', () => {
  const loose = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(''), fc.constant(2 ** 60), fc.constant(1_700_000_000));
  const idLike = fc.oneof(fc.string({ minLength: 1 }), fc.integer({ min: 0 }), loose);
  const profile = fc.oneof(fc.record({ user_id: idLike, item_id: idLike, url: loose, avatar: loose }, { requiredKeys: [] }), loose);
  const user = fc.oneof(fc.record({ id: idLike, name: loose, public_user_profile: profile, extra: loose }, { requiredKeys: [] }), loose);
  const item = fc.oneof(
    fc.record({ id: idLike, title: loose, url: loose, price_string: loose, status_id: loose, user_id: idLike, images: fc.anything(), other: loose }, { requiredKeys: [] }),
    loose,
  );
  const time = fc.oneof(fc.integer({ min: 946_684_800, max: 4_102_444_800 }), loose, fc.constant(1e308));
  const chat = fc.record(
    {
      id: fc.oneof(fc.string({ minLength: 1 }), loose),
      created: time,
      updated: time,
      context: fc.oneof(fc.record({ type: loose, value: item, extra: loose }, { requiredKeys: [] }), loose),
      last_message: fc.anything(),
      users: fc.oneof(fc.array(user, { maxLength: 3 }), loose),
      unknown_field: fc.anything(),
    },
    { requiredKeys: ['id', 'updated'] },
  );
  // A chat as Avito sends it (messenger.json Chat, with the fields real lists add).
  const usual = {
    id: 'u2i-abc', created: 1_700_000_000, updated: 1_700_000_100,
    context: { type: 'item', value: { id: 123456789, title: 'Диван', url: 'https://www.avito.ru/1', price_string: '10 000 ₽', status_id: 1, user_id: 42, images: { main: { '140x105': 'https://x' } } } },
    last_message: { id: 'm', content: { text: 'hi' }, created: 1_700_000_100, direction: 'in', type: 'text' },
    users: [
      { id: 42, name: 'Продавец', public_user_profile: { user_id: 42, item_id: 123456789, url: 'https://www.avito.ru/user/42', avatar: { default: 'https://a' } } },
      { id: '77', name: 'Покупатель', public_user_profile: null },
    ],
  };

  it('gives the schema’s result for every chat it accepts, and leaves the rest to the schema', () => {
    const accepted = agreesWithSchema(chat, readAvitoChat, avitoChatSchema, 2000, (fast, slow) => {
      // The ledger keeps the chat as JSON (chats.raw): the same text but for the order of keys.
      expect(JSON.parse(JSON.stringify(fast))).toEqual(JSON.parse(JSON.stringify(slow)));
    });
    expect(accepted).toBeGreaterThan(100);
  });

  it('accepts the usual chat without the schema, with ids as strings', () => {
    const fast = readAvitoChat(usual);
    expect(fast).toBeDefined();
    expect(fast).toEqual(avitoChatSchema.parse(usual));
    expect(fast!.context?.value?.id).toBe('123456789');
    expect(fast!.users.map((u) => u.id)).toEqual(['42', '77']);
    for (const c of [{ ...usual, context: null }, { ...usual, users: undefined }, { ...usual, context: { type: 'item' } }]) {
      expect(readAvitoChat(c)).toEqual(avitoChatSchema.parse(c));
    }
  });

  it('leaves to the schema what it would refuse or read differently', () => {
    for (const c of [{ ...usual, id: '' }, { ...usual, updated: 1e308 }, { ...usual, users: [{ name: 'no id' }] }, { ...usual, context: { value: { id: 2 ** 60 } } }, { ...usual, users: 'x' }]) {
      expect(readAvitoChat(c)).toBeUndefined();
    }
  });

  it('leaves a chat with a `__proto__` key anywhere to the schema (which drops the key)', () => {
    for (const at of ['', 'context.value', 'users.0', 'users.0.public_user_profile']) {
      const raw = JSON.parse(JSON.stringify(usual)) as Record<string, unknown>;
      const target = at.split('.').filter(Boolean).reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, raw);
      // What JSON.parse makes of a "__proto__" key: an own property, not the prototype.
      Object.defineProperty(target, '__proto__', { value: { polluted: 1 }, enumerable: true, configurable: true, writable: true });
      expect(JSON.stringify(raw)).toContain('polluted');
      expect(readAvitoChat(raw)).toBeUndefined();
      expect(JSON.stringify(avitoChatSchema.parse(raw))).not.toContain('polluted');
    }
  });

  it('reads a chats list as the schema does, and leaves any other shape to it', () => {
    for (const page of [{ chats: [usual] }, { chats: [], meta: 1 }]) expect(readChatList(page)).toEqual(avitoChatListSchema.parse(page));
    for (const other of [{ chats: null }, {}, [], null, 'x']) expect(readChatList(other)).toBeUndefined();
  });
});
