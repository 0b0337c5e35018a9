import { timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AvitoWebhookIntake, IntakeResult } from '../sync/webhook-intake.js';
import { WEBHOOK_BODY_LIMIT } from '../sync/webhook-intake.js';
import type { Metrics } from './metrics.js';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  [key: string]: unknown;
}

export interface HttpServerDeps {
  log: Logger;
  metrics: Metrics;
  webhookSecret: string;
  avitoIntake: AvitoWebhookIntake;
  /** Called after a webhook was stored and answered. */
  onAvitoStored: (r: Extract<IntakeResult, { status: 200 }>) => void;
  health: () => Promise<HealthReport>;
  /** A CRM's webhook (`/webhooks/<connector>/<secret>`): false when no such connector runs. */
  crmWebhook?: (connectorId: string, body: Buffer, contentType: string) => Promise<boolean>;
  /**
   * `POST /webhooks/<alias>/<token>` for a connector that declared `webhookAliases` (its CRM fixes
   * the URL and signs the call): no WEBHOOK_SECRET; the connector verifies it. Returns the status
   * to answer; undefined when no running connector has this alias.
   */
  crmAliasWebhook?: (alias: string, token: string, req: { body: Buffer; headers: Record<string, string>; contentType: string }) => Promise<{ status: number; reason?: string } | undefined>;
  /** The absolute path of a kept voice file, when the signature is right and the file is kept. */
  voiceFile?: (accountId: string, voiceId: string, sig: string | undefined) => Promise<string | undefined>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The daemon's HTTP server: `POST /webhooks/avito/<secret>`, `GET /healthz`, `GET /metrics`.
 * Bodies are read raw (any content type) up to WEBHOOK_BODY_LIMIT: larger is 413.
 */
export function buildHttpServer(deps: HttpServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: WEBHOOK_BODY_LIMIT,
    return503OnClosing: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (req.url.startsWith('/webhooks/')) {
      deps.metrics.webhooksRejected.inc({ source: req.url.split('/')[2] ?? '?', reason: status === 413 ? 'too_large' : status >= 500 ? 'not_stored' : 'bad_request' });
    }
    if (status >= 500) deps.log.error({ err, url: req.routeOptions.url }, 'request failed');
    void reply.code(status).send({ error: status >= 500 ? 'not stored, try again' : err.message });
  });

  app.post<{ Params: { secret: string } }>('/webhooks/avito/:secret', async (req, reply) => {
    const started = performance.now();
    if (!sameSecret(req.params.secret, deps.webhookSecret)) {
      deps.metrics.webhooksRejected.inc({ source: 'avito', reason: 'wrong_secret' });
      return reply.code(404).send({ error: 'not found' });
    }
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      deps.metrics.webhooksRejected.inc({ source: 'avito', reason: 'empty' });
      return reply.code(400).send({ error: 'empty body' });
    }
    const result = await deps.avitoIntake.accept(body);
    deps.metrics.webhookAckSeconds.observe({ source: 'avito' }, (performance.now() - started) / 1000);
    if (result.status !== 200) {
      deps.metrics.webhooksRejected.inc({ source: 'avito', reason: result.status === 422 ? 'unknown_account' : 'bad_request' });
      deps.log.warn({ reason: result.reason }, 'Avito webhook rejected');
      return reply.code(result.status).send({ error: result.reason });
    }
    deps.metrics.webhooksReceived.inc({ source: 'avito', result: result.result });
    reply.raw.once('finish', () => deps.onAvitoStored(result));
    return reply.code(200).send({ ok: true });
  });

  // CRM webhooks are hints (the connector reads the notes back), so they are answered fast.
  app.post<{ Params: { connector: string; secret: string } }>('/webhooks/:connector/:secret', async (req, reply) => {
    const source = req.params.connector;
    const body0 = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const aliased = await deps.crmAliasWebhook?.(source, req.params.secret, { body: body0, headers, contentType: String(req.headers['content-type'] ?? '') });
    if (aliased) {
      if (aliased.status >= 400) {
        deps.metrics.webhooksRejected.inc({ source, reason: aliased.status === 401 ? 'bad_signature' : 'refused' });
        deps.log.warn({ source, status: aliased.status, reason: aliased.reason }, 'CRM webhook refused');
        return reply.code(aliased.status).send({ error: aliased.reason ?? 'refused' });
      }
      deps.metrics.webhooksReceived.inc({ source, result: 'stored' });
      return reply.code(aliased.status).send({ ok: true });
    }
    if (!sameSecret(req.params.secret, deps.webhookSecret) || !deps.crmWebhook) {
      deps.metrics.webhooksRejected.inc({ source, reason: 'wrong_secret' });
      return reply.code(404).send({ error: 'not found' });
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!(await deps.crmWebhook(source, body, String(req.headers['content-type'] ?? '')))) {
      deps.metrics.webhooksRejected.inc({ source, reason: 'unknown_connector' });
      return reply.code(404).send({ error: 'not found' });
    }
    deps.metrics.webhooksReceived.inc({ source, result: 'hint' });
    return reply.code(200).send({ ok: true });
  });

  app.get<{ Params: { account: string; voice: string }; Querystring: { sig?: string } }>('/files/voice/:account/:voice', async (req, reply) => {
    const file = await deps.voiceFile?.(req.params.account, req.params.voice, req.query.sig);
    if (!file) return reply.code(404).send({ error: 'not found' });
    return reply.code(200).header('content-type', 'audio/mp4').header('cache-control', 'private, max-age=86400').send(createReadStream(file));
  });

  app.get('/healthz', async (_req, reply) => {
    const report = await deps.health();
    return reply.code(report.status === 'down' ? 503 : 200).send(report);
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.code(200).header('content-type', deps.metrics.registry.contentType).send(text);
  });

  return app;
}
