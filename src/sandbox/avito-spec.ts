import { z } from 'zod';

/**
 * The operations of Avito's official OpenAPI specs (messenger.json, authorization.json,
 * user-info.json, items.json) that this project uses, written out here so the fake server can
 * reject every request the spec would reject: unknown operations, unknown or mistyped
 * parameters, values out of range, bodies of the wrong shape. Known spec typos are not
 * enforced (sendMessageRequestBody's `required: ["url"]`).
 */

export type ParamType = 'int32' | 'int64' | 'boolean' | 'string' | 'int64-list' | 'string-list';

export interface QueryParamSpec {
  type: ParamType;
  min?: number;
  max?: number;
  /** Allowed values (for lists: each element). */
  enum?: readonly string[];
  required?: boolean;
}

export interface OperationSpec {
  id: string;
  method: 'GET' | 'POST';
  /** Path template from the spec. */
  path: string;
  query?: Record<string, QueryParamSpec>;
  body?: { type: 'json'; schema: z.ZodType } | { type: 'multipart'; field: string } | { type: 'form' };
  /** Needs `Authorization: Bearer` (every operation but /token). */
  auth: boolean;
  /** Messenger operations are refused with 402 on a tariff without the Messenger API. */
  messenger: boolean;
  /** Operations refused to an employee's key on the company's chats (Messenger guide, account hierarchy). */
  chatScoped: boolean;
}

const int64 = z.number().int();
const limit: QueryParamSpec = { type: 'int32', min: 1, max: 100 };
const offset: QueryParamSpec = { type: 'int32', min: 0, max: 1000 };

export const AVITO_OPERATIONS: readonly OperationSpec[] = [
  // authorization.json
  { id: 'getAccessToken', method: 'POST', path: '/token', body: { type: 'form' }, auth: false, messenger: false, chatScoped: false },
  // user-info.json
  { id: 'getUserInfoSelf', method: 'GET', path: '/core/v1/accounts/self', auth: true, messenger: false, chatScoped: false },
  // items.json
  {
    id: 'getItemsInfo', method: 'GET', path: '/core/v1/items', auth: true, messenger: false, chatScoped: false,
    query: {
      per_page: { type: 'int32', min: 1, max: 100 },
      page: { type: 'int32', min: 1 },
      status: { type: 'string-list', enum: ['active', 'removed', 'old', 'blocked', 'rejected'] },
      updatedAtFrom: { type: 'string' },
      category: { type: 'int32' },
    },
  },
  // messenger.json
  {
    id: 'postSendMessage', method: 'POST', path: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages', auth: true, messenger: true, chatScoped: true,
    body: { type: 'json', schema: z.object({ message: z.object({ text: z.string().min(1).max(1000) }), type: z.literal('text').optional() }) },
  },
  {
    id: 'postSendImageMessage', method: 'POST', path: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/image', auth: true, messenger: true, chatScoped: true,
    body: { type: 'json', schema: z.object({ image_id: z.string().min(1) }) },
  },
  { id: 'deleteMessage', method: 'POST', path: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/{message_id}', auth: true, messenger: true, chatScoped: true },
  { id: 'chatRead', method: 'POST', path: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/read', auth: true, messenger: true, chatScoped: true },
  {
    id: 'getVoiceFiles', method: 'GET', path: '/messenger/v1/accounts/{user_id}/getVoiceFiles', auth: true, messenger: true, chatScoped: true,
    query: { voice_ids: { type: 'string-list', required: true } },
  },
  { id: 'uploadImages', method: 'POST', path: '/messenger/v1/accounts/{user_id}/uploadImages', body: { type: 'multipart', field: 'uploadfile[]' }, auth: true, messenger: true, chatScoped: true },
  { id: 'getSubscriptions', method: 'POST', path: '/messenger/v1/subscriptions', auth: true, messenger: true, chatScoped: false },
  {
    id: 'postWebhookUnsubscribe', method: 'POST', path: '/messenger/v1/webhook/unsubscribe', auth: true, messenger: true, chatScoped: false,
    body: { type: 'json', schema: z.object({ url: z.string().min(1) }) },
  },
  {
    id: 'postBlacklistV2', method: 'POST', path: '/messenger/v2/accounts/{user_id}/blacklist', auth: true, messenger: true, chatScoped: true,
    body: {
      type: 'json',
      schema: z.object({
        users: z.array(z.object({
          user_id: int64,
          context: z.object({ item_id: int64.optional(), reason_id: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]).optional() }).optional(),
        })).min(1),
      }),
    },
  },
  {
    id: 'getChatsV2', method: 'GET', path: '/messenger/v2/accounts/{user_id}/chats', auth: true, messenger: true, chatScoped: false,
    query: {
      item_ids: { type: 'int64-list' },
      unread_only: { type: 'boolean' },
      chat_types: { type: 'string-list', enum: ['u2i', 'u2u', 'a2u'] },
      limit,
      offset,
    },
  },
  { id: 'getChatByIdV2', method: 'GET', path: '/messenger/v2/accounts/{user_id}/chats/{chat_id}', auth: true, messenger: true, chatScoped: true },
  {
    id: 'getMessagesV3', method: 'GET', path: '/messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/', auth: true, messenger: true, chatScoped: true,
    query: { limit, offset },
  },
  {
    id: 'postWebhookV3', method: 'POST', path: '/messenger/v3/webhook', auth: true, messenger: true, chatScoped: false,
    body: { type: 'json', schema: z.object({ url: z.string().min(1) }) },
  },
];

export interface MatchedOperation {
  op: OperationSpec;
  params: Record<string, string>;
}

const compiled = AVITO_OPERATIONS.map((op) => {
  const names: string[] = [];
  const pattern = op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, n: string) => {
    names.push(n);
    return '([^/]+)';
  });
  return { op, names, re: new RegExp(`^${pattern}$`) };
});

/** Finds the operation for a method and path; `user_id` must be an int64 as the spec types it. */
export function matchOperation(method: string, pathname: string): MatchedOperation | { error: string; status: number } {
  let pathMatched = false;
  for (const c of compiled) {
    const m = c.re.exec(pathname);
    if (!m) continue;
    pathMatched = true;
    if (c.op.method !== method) continue;
    const params: Record<string, string> = {};
    c.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
    if (params.user_id !== undefined && !/^\d+$/.test(params.user_id)) return { status: 400, error: 'user_id: must be an integer (int64)' };
    return { op: c.op, params };
  }
  return pathMatched ? { status: 405, error: 'method not allowed' } : { status: 404, error: 'not found' };
}

/** Checks the query against the operation's parameters; returns the first problem. */
export function checkQuery(op: OperationSpec, query: URLSearchParams): string | undefined {
  const spec = op.query ?? {};
  for (const key of new Set(query.keys())) {
    if (!(key in spec)) return `${key}: unknown parameter`;
    if (query.getAll(key).length > 1) return `${key}: given more than once`;
  }
  for (const [name, p] of Object.entries(spec)) {
    const raw = query.get(name);
    if (raw === null) {
      if (p.required) return `${name}: required`;
      continue;
    }
    switch (p.type) {
      case 'int32':
      case 'int64': {
        if (!/^-?\d+$/.test(raw)) return `${name}: must be an integer`;
        const n = Number(raw);
        if (p.min !== undefined && n < p.min) return `${name}: must be at least ${p.min}`;
        if (p.max !== undefined && n > p.max) return `${name}: must be at most ${p.max}`;
        break;
      }
      case 'boolean':
        if (raw !== 'true' && raw !== 'false') return `${name}: must be true or false`;
        break;
      case 'int64-list':
        if (!raw.split(',').every((v) => /^\d+$/.test(v))) return `${name}: must be integers, comma-separated`;
        break;
      case 'string-list': {
        const parts = raw.split(',');
        if (parts.some((v) => v === '')) return `${name}: empty element`;
        if (p.enum && !parts.every((v) => p.enum!.includes(v))) return `${name}: each must be one of ${p.enum.join(', ')}`;
        break;
      }
      case 'string':
        if (p.enum && !p.enum.includes(raw)) return `${name}: must be one of ${p.enum.join(', ')}`;
        break;
    }
  }
  return undefined;
}
