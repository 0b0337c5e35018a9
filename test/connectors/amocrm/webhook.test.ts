import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorInstance, WebhookRequest } from '../../../src/connector-sdk/contract.js';
import { connectorPauses, connectorStore } from '../../../src/ledger/connector-state.js';
import type { Ledger } from '../../../src/ledger/database.js';
import { openTestLedger } from '../../dialects.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { SandboxAmo } from '../../../connectors/amocrm/sandbox.js';
import { subdomainOf, type AmoConnector } from '../../../connectors/amocrm/connector.js';
import { amocrm } from '../../../connectors/amocrm/index.js';
import { accountOfWebhook, mayBeReply, noteHintsFromWebhook } from '../../../connectors/amocrm/replies.js';

/** A real `note_lead` delivery captured by another integrator: account 15109720, "makeprofit", one common note. */
const REAL = readFileSync(new URL('../../../connectors/amocrm/fixtures/note-lead-webhook.form.txt', import.meta.url), 'utf8');
const form = (body: string): WebhookRequest => ({ body: Buffer.from(body), headers: { 'content-type': 'application/x-www-form-urlencoded' }, contentType: 'application/x-www-form-urlencoded' });

describe('amoCRM note_lead webhooks', () => {
  let fake: SandboxAmo;
  let ledger: Ledger;
  const make = () =>
    amocrm.create({
      accountId: 'default',
      config: amocrm.configSchema.parse({ baseUrl: fake.url, accessToken: fake.token }),
      log: memoryLogger('warn').logger,
      store: connectorStore(ledger.db, 'default', 'amocrm'),
      ...connectorPauses(ledger.db, 'default', 'amocrm'),
      registerSecret: () => undefined,
      retry: { minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryAfterMs: 50, retries: 2 },
    }) as AmoConnector & ConnectorInstance;

  beforeEach(async () => {
    fake = new SandboxAmo({ accountId: 15109720, subdomain: 'makeprofit', rateLimit: 1000 });
    await fake.start();
    ledger = await openTestLedger();
  });
  afterEach(async () => {
    await ledger.close();
    await fake.stop();
  });

  it('the real sample: its note, type and account are read from the form body', () => {
    expect(accountOfWebhook(REAL)).toEqual({ id: '15109720', subdomain: 'makeprofit' });
    const hints = noteHintsFromWebhook(REAL);
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatchObject({ id: 213313359, noteType: '4' });
    expect(hints[0]!.text).toMatch(/^Количество этажей/);
    expect(mayBeReply(hints[0]!, '/avito')).toBe(false); // a common note without the prefix
    expect(mayBeReply({ ...hints[0]!, text: '/avito да' }, '/avito')).toBe(true);
    expect(mayBeReply({ id: 1, noteType: '25', text: '/avito x' }, '/avito')).toBe(false); // not a common note
    expect(mayBeReply({ id: 1, noteType: '4', text: '/avito x\n#avito:m1' }, '/avito')).toBe(false); // our marker
    expect(mayBeReply({ id: 1, noteType: undefined, text: undefined }, '/avito')).toBe(true); // unknown: read it
  });

  it('routes by account id once the account is known, by subdomain from the base URL before', async () => {
    const c = make();
    expect(c.matchesWebhook(form(REAL))).toBe(false); // 127.0.0.1 names no subdomain, identity not learned yet
    await c.checkAccess();
    expect(c.matchesWebhook(form(REAL))).toBe(true);
    expect(c.matchesWebhook(form(REAL.replace('account%5Bid%5D=15109720', 'account%5Bid%5D=15109721')))).toBe(false);
    expect(c.matchesWebhook(form('garbage=%%%'))).toBe(false);
    expect(subdomainOf('https://MakeProfit.amocrm.ru')).toBe('makeprofit');
    expect(subdomainOf('https://shop.kommo.com')).toBe('shop');
    expect(subdomainOf('http://127.0.0.1:3000')).toBeUndefined();
  });

  it('a callback for a note that cannot be a reply costs no read', async () => {
    const c = make();
    const before = fake.requests.length;
    const verdict = await c.webhook(form(REAL));
    expect(verdict).toEqual({ accepted: true });
    const own = new URLSearchParams({ 'leads[note][0][note][id]': '5', 'leads[note][0][note][note_type]': '25', 'leads[note][0][note][text]': 'Покупатель: привет\n#avito:m-1', 'account[id]': '15109720' });
    expect(await c.webhook(form(own.toString()))).toEqual({ accepted: true });
    expect(fake.requests.length).toBe(before);
    expect(await c.webhook(form('\u0000not a webhook{'))).toMatchObject({ accepted: false, status: 400 });
  });

  it('10 webhooks naming 2,000 note ids cost one read per 250 ids, shared by the burst', async () => {
    const c = make();
    const lead = 1;
    const ids: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const id = 500_000 + i;
      ids.push(id);
      fake.notes.set(id, { id, entity_id: lead, note_type: 'common', params: { text: i === 7 ? '/avito hello' : `internal ${i}` }, created_by: 2, created_at: 1, updated_at: 1 });
    }
    const bodies = Array.from({ length: 10 }, (_, w) => {
      const f = new URLSearchParams();
      ids.slice(w * 200, w * 200 + 200).forEach((id, i) => f.append(`leads[note][${i}][note][id]`, String(id)));
      f.append('account[id]', '15109720');
      return f.toString();
    });
    const before = fake.count('/api/v4/leads/notes', 'GET');
    const verdicts = await Promise.all(bodies.map((b) => c.webhook(form(b))));
    const laters = verdicts.map((v) => (v.accepted && v.later ? v.later() : undefined));
    expect(new Set(laters).size).toBe(1); // one promise for the whole burst
    const replies = await laters[0]!;
    expect(replies.map((r) => r.text)).toEqual(['hello']);
    expect(fake.count('/api/v4/leads/notes', 'GET') - before).toBe(8);
  });
});
