import { timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { WEBHOOK_BODY_LIMIT, type AvitoIntakePort, type CrmRoutes, type IntakeResult } from './ports.js';
import { registerVoiceRoute, type VoiceFileLookup } from './voice-route.js';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  [key: string]: unknown;
}

/**
 * Limits of the server's sockets (issue: slow-trickling clients held connections for minutes).
 * Defaults suit webhooks of a few KB answered in milliseconds.
 */
export interface ServerLimits {
  /** Whole request (headers and body) must arrive within this. Default 15 s. */
  requestTimeoutMs: number;
  /** Headers must arrive within this. Default 10 s. */
  headersTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. Default 5 s. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all is closed after this. Default 30 s. */
  idleTimeoutMs: number;
  /** Open connections at most; more are refused at accept. Default 256. */
  maxConnections: number;
  /** How often the timeouts above are checked. Default 1 s. */
  checkIntervalMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  requestTimeoutMs: 15_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 256,
  checkIntervalMs: 1_000,
};

export interface HttpServerDeps {
  log: Logger;
  metrics: Metrics;
  webhookSecret: string;
  avitoIntake: AvitoIntakePort;
  /** Called after a webhook was stored and answered. */
  onAvitoStored: (r: Extract<IntakeResult, { status: 200 }>) => void;
  health: () => Promise<HealthReport>;
  /**
   * The CRM routes, `POST /webhooks/<connector id>/<WEBHOOK_SECRET>` and the aliases connectors
   * declare (`/webhooks/<alias>/<token>`, verified by the connector). Metric labels name only
   * these segments; anything else is `other`.
   */
  crmRoutes?: CrmRoutes;
  /** The absolute path of a kept voice file, when the link is valid (signed, not expired) and the file is kept. */
  voiceFile?: VoiceFileLookup;
  /** `METRICS_TOKEN`: when set, `/metrics` wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
  limits?: Partial<ServerLimits>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Every header as one string, names lower-cased (Node already lower-cases them). */
function flatHeaders(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * The daemon's HTTP server: `POST /webhooks/avito/<secret>`, `POST /webhooks/<connector>/<secret>`,
 * `GET /files/voice/…`, `GET /healthz`, `GET /metrics`. Bodies are read raw (any content type)
 * up to WEBHOOK_BODY_LIMIT (larger is 413), and only after the secret in the path was checked.
 * Metric labels take values from a closed set, so junk requests cannot grow `/metrics`.
 */
export function buildHttpServer(deps: HttpServerDeps): FastifyInstance {
  const limits = { ...DEFAULT_SERVER_LIMITS, ...deps.limits };
  // Labels from a closed set: `avito`, a running connector's id or served alias, else `other`.
  const isAliasCall = (s: string): boolean => Boolean(deps.crmRoutes && !deps.crmRoutes.isConnector(s) && deps.crmRoutes.isAlias(s));
  const sourceLabel = (s: string | undefined): string => (s === 'avito' || (s && deps.crmRoutes && (deps.crmRoutes.isConnector(s) || deps.crmRoutes.isAlias(s))) ? s! : 'other');
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: WEBHOOK_BODY_LIMIT,
    return503OnClosing: true,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node's own server, so the header timeout and the check interval can be set too.
    serverFactory: (handler) => {
      const server: Server = createServer(
        { requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs },
        handler as (req: IncomingMessage, res: ServerResponse) => void,
      );
      server.maxConnections = limits.maxConnections;
      return server;
    },
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (req.url.startsWith('/webhooks/')) {
      const source = sourceLabel((req.params as { connector?: string } | undefined)?.connector ?? (req.routeOptions.url === '/webhooks/avito/:secret' ? 'avito' : undefined));
      deps.metrics.webhooksRejected.inc({ source, reason: status === 413 ? 'too_large' : status >= 500 ? 'not_stored' : 'bad_request' });
    }
    if (status >= 500) deps.log.error({ err, url: req.routeOptions.url }, 'request failed');
    void reply.code(status).send({ error: status >= 500 ? 'not stored, try again' : err.message });
  });

  /** The secret is checked before the body is read: a stranger's upload is never buffered. */
  const secretFirst = (source: (req: FastifyRequest) => string, noSecret: (req: FastifyRequest) => boolean = () => false) => async (req: FastifyRequest, reply: FastifyReply) => {
    // An alias route has no WEBHOOK_SECRET: its token is the CRM's routing id, its body signed.
    if (noSecret(req)) return undefined;
    const { secret } = req.params as { secret: string };
    if (!sameSecret(secret, deps.webhookSecret)) {
      deps.metrics.webhooksRejected.inc({ source: sourceLabel(source(req)), reason: 'wrong_secret' });
      // Close the connection: a body still arriving is not read.
      return reply.code(404).header('connection', 'close').send({ error: 'not found' });
    }
    return undefined;
  };

  app.post<{ Params: { secret: string } }>('/webhooks/avito/:secret', { onRequest: secretFirst(() => 'avito') }, async (req, reply) => {
    const started = performance.now();
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

  // One route family for every CRM: `/webhooks/<connector id>/<WEBHOOK_SECRET>` (the secret checked
  // before the body is read, then the connector verifies what its CRM signs), or an alias a
  // running instance serves (`/webhooks/<alias>/<token>`, no secret: the instance verifies the
  // CRM's signature). What a webhook names is stored before the answer (202 new, 200 seen
  // before); hints are read afterwards.
  app.post<{ Params: { connector: string; secret: string } }>(
    '/webhooks/:connector/:secret',
    { onRequest: secretFirst((req) => (req.params as { connector: string }).connector, (req) => isAliasCall((req.params as { connector: string }).connector)) },
    async (req, reply) => {
      const started = performance.now();
      const segment = req.params.connector;
      const source = sourceLabel(segment);
      const routes = deps.crmRoutes;
      const route = !routes ? undefined : routes.isConnector(segment) ? { connectorId: segment } : routes.isAlias(segment) ? { alias: segment, token: req.params.secret } : undefined;
      if (!routes || !route) {
        deps.metrics.webhooksRejected.inc({ source, reason: 'unknown_connector' });
        return reply.code(404).send({ error: 'not found' });
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await routes.handle({ route, method: req.method, body, headers: flatHeaders(req), contentType: String(req.headers['content-type'] ?? '') });
      deps.metrics.webhookAckSeconds.observe({ source }, (performance.now() - started) / 1000);
      if (result.status >= 400) {
        const r = result as Extract<typeof result, { reason: string }>;
        deps.metrics.webhooksRejected.inc({ source, reason: r.result === 'refused' ? `refused_${r.status}` : r.result });
        deps.log.warn({ connector: source, status: r.status, reason: r.reason }, 'CRM webhook refused');
        return reply.code(r.status).send({ error: r.reason });
      }
      deps.metrics.webhooksReceived.inc({ source, result: result.result });
      return reply.code(result.status).send({ ok: true });
    },
  );

  registerVoiceRoute(app, deps.voiceFile);

  app.get('/healthz', async (_req, reply) => {
    const report = await deps.health();
    return reply.code(report.status === 'down' ? 503 : 200).send(report);
  });

  app.get('/metrics', async (req, reply) => {
    if (deps.metricsToken) {
      const auth = String(req.headers.authorization ?? '');
      const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      if (!sameSecret(given, deps.metricsToken)) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'metrics need the token' });
    }
    const text = await deps.metrics.registry.metrics();
    return reply.code(200).header('content-type', deps.metrics.registry.contentType).send(text);
  });

  return app;
}
