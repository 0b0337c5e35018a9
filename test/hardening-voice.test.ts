import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { applyRetention } from '../src/sync/retention.js';
import { VoiceKeeper } from '../src/avito/voice-keeper.js';
import { voiceLink } from '../src/sync/voice-links.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, tempDir, testRuntime } from './helpers.js';

/** Issue 9, item 9 and retention: voice links that expire and behave like files; old personal data goes. */

let fake: SandboxAvito;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: (() => void) | undefined;
let base: string;

async function setup() {
  fake = new SandboxAvito();
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt } = await testRuntime(fakeEnv(fake, t.dir, { WEBHOOK_SECRET: 'test-secret-0123456789' })));
}

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await fake?.stop();
  cleanup?.();
  cleanup = undefined;
});

/** A kept voice file of `bytes` bytes, as the keeper leaves it. */
async function keep(voiceId: string, bytes: number, fetchedAt = Date.now()): Promise<string> {
  const rel = VoiceKeeper.fileName('default', voiceId);
  const abs = rt!.voice.absolutePath(rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, Buffer.from(Array.from({ length: bytes }, (_, i) => i % 256)));
  await rt!.ledger.db.insertInto('voice_files').values({ account_id: 'default', voice_id: voiceId, path: rel, size: bytes, fetched_at: fetchedAt, error: null, attempts: 0 }).execute();
  return abs;
}

describe('issue 9: voice links', () => {
  it('an expired voice link is refused; a valid one serves the file, with Range and HEAD; a missing file is 404 for GET and HEAD', async () => {
    await setup();
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    base = `http://127.0.0.1:${daemon.port}`;
    const abs = await keep('voice-1', 1000);
    const link = (ttl: number, now = Date.now()) => voiceLink(base, daemon!.webhookSecret, 'default', 'voice-1', ttl, now);

    const expired = link(3600, Date.now() - 7200_000);
    expect((await fetch(expired)).status).toBe(404);
    expect((await fetch(link(3600).replace(/sig=[^&]+/, 'sig=forged-forged-forged-forged-0'))).status).toBe(404);
    expect((await fetch(link(3600).replace(/[?&]exp=\d+/, ''))).status).toBe(404); // links without an expiry are refused

    const whole = await fetch(link(3600));
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/mp4');
    expect((await whole.arrayBuffer()).byteLength).toBe(1000);

    const part = await fetch(link(3600), { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    const bytes = new Uint8Array(await part.arrayBuffer());
    expect(bytes.length).toBe(100);
    expect(bytes[0]).toBe(100);
    expect((await fetch(link(3600), { headers: { range: 'bytes=-10' } })).headers.get('content-range')).toBe('bytes 990-999/1000');
    expect((await fetch(link(3600), { headers: { range: 'bytes=5000-' } })).status).toBe(416);

    const head = await fetch(link(3600), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');

    // The file is gone (deleted by hand, or a lost volume): 404, never a 200 header first.
    const { rmSync } = await import('node:fs');
    rmSync(abs);
    expect((await fetch(link(3600))).status).toBe(404);
    expect((await fetch(link(3600), { method: 'HEAD' })).status).toBe(404);
  });

  it('collision-free voice file names: a/b and a_b are kept apart; plain ids keep their name', () => {
    const names = ['a/b', 'a_b', 'a:b', '../../etc/passwd', 'x'.repeat(300)].map((id) => VoiceKeeper.fileName('default', id));
    expect(new Set(names).size).toBe(names.length);
    expect(VoiceKeeper.fileName('default', 'a_b')).toBe(path.join('voice', 'default', 'a_b.mp4'));
    for (const n of names) expect(path.normalize(n).startsWith(path.join('voice', 'default'))).toBe(true);
  });
});

describe('issue 9: RETENTION_DAYS', () => {
  it('RETENTION_DAYS deletes raw webhook bodies and kept voice files older than the limit; newer ones stay', async () => {
    await setup();
    const day = 86_400_000;
    const now = Date.now();
    for (const [id, at] of [['old', now - 40 * day], ['new', now - day]] as const) {
      await rt!.ledger.db.insertInto('webhook_events').values({ source: 'avito', account_id: 'default', event_id: id, received_at: at, body: '{"buyer":"Иван, +7 900 000-00-00"}', status: 'processed', error: null }).execute();
    }
    const oldFile = await keep('old-voice', 10, now - 40 * day);
    const newFile = await keep('new-voice', 10, now - day);
    const report = await applyRetention(rt!.ledger, rt!.voice, 30, rt!.log, now);
    expect(report).toEqual({ webhookBodies: 1, voiceFiles: 1 });
    const events = await rt!.ledger.db.selectFrom('webhook_events').select(['event_id', 'body']).orderBy('event_id').execute();
    expect(events).toEqual([{ event_id: 'new', body: expect.stringContaining('Иван') }, { event_id: 'old', body: '' }]);
    expect(existsSync(oldFile)).toBe(false);
    expect(existsSync(newFile)).toBe(true);
    const row = await rt!.ledger.db.selectFrom('voice_files').selectAll().where('voice_id', '=', 'old-voice').executeTakeFirstOrThrow();
    expect(row.path).toBeNull();
    expect(row.attempts).toBeGreaterThanOrEqual(5); // never fetched again
    expect(await applyRetention(rt!.ledger, rt!.voice, 0, rt!.log, now)).toEqual({ webhookBodies: 0, voiceFiles: 0 });
  });
});
