import { connectorContract } from 'avito-crm-sync/connector-kit';
import connector from '../src/index.js';
import { FakeCrm } from './fake-crm.js';

/** The contract kit: when every case passes, the core can rely on this connector. */
connectorContract<FakeCrm>({
  definition: connector,
  startFake: async () => {
    const f = new FakeCrm();
    await f.start();
    return f;
  },
  stopFake: (f) => f.stop(),
  config: (f, credentials) => ({ baseUrl: f.url, token: credentials === 'good' ? f.token : 'wrong-token' }),
  conversationCount: (f) => f.conversations.size,
  deliveredIds: (f, conversation) => f.notesIn(conversation.id).flatMap((n) => (n.marker ? [n.marker] : [])),
  inject: (f, fault, times) => f.inject({ rate_limited: 429, server_error: 503, bad_request: 400, unauthorized: 401 }[fault], times),
  clearFaults: (f) => f.clearFaults(),
  replies: {
    write: async (f, conversation, text) => void f.managerNote(conversation.id, `/avito ${text}`),
    writeInternal: async (f, conversation, text) => void f.managerNote(conversation.id, text),
    outcomes: (f, conversation) => f.notesIn(conversation.id).filter((n) => n.author === 'integration' && !n.marker).map((n) => n.text),
  },
});
