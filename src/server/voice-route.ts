import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** Finds a kept voice file: its absolute path when the link is valid (signed, not expired) and the file is kept. */
export type VoiceFileLookup = (accountId: string, voiceId: string, sig: string | undefined, exp: string | undefined) => Promise<string | undefined>;

/**
 * `GET /files/voice/<account>/<voice id>?exp=…&sig=…` (and HEAD, which Fastify answers from the
 * same handler without a body): 404 for a bad or expired link and for a file that is gone (never
 * a 200 header followed by a failure), and single byte ranges (`Range: bytes=a-b`, 206), which
 * audio players use to seek (issue 9, item 9).
 */
export function registerVoiceRoute(app: FastifyInstance, lookup: VoiceFileLookup | undefined): void {
  app.get<{ Params: { account: string; voice: string }; Querystring: { sig?: string; exp?: string } }>('/files/voice/:account/:voice', async (req, reply) => {
    const file = await lookup?.(req.params.account, req.params.voice, req.query.sig, req.query.exp);
    const size = file ? await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined) : undefined;
    if (!file || size === undefined) return reply.code(404).send({ error: 'not found' });
    void reply.header('content-type', 'audio/mp4').header('cache-control', 'private, max-age=3600').header('accept-ranges', 'bytes');
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${size}`).send();
    if (range) {
      return reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1)
        .send(createReadStream(file, { start: range.start, end: range.end }));
    }
    return reply.code(200).header('content-length', size).send(createReadStream(file));
  });
}

/** One `bytes=` range (RFC 9110 §14.1.2); several ranges or a malformed header get the whole file. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
