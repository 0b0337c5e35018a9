import { z } from 'zod';

/**
 * Raw amoCRM REST v4 shapes (community OpenAPI + amoCRM's docs), validated leniently: the
 * fields this connector relies on are checked, the rest pass through.
 */

const id = z.coerce.number().int();

export const amoProblemSchema = z.looseObject({
  title: z.string().optional(),
  type: z.string().optional(),
  status: z.coerce.number().optional(),
  detail: z.string().optional(),
  'validation-errors': z.array(z.unknown()).optional(),
});

export const amoTokenSchema = z.looseObject({
  token_type: z.string().optional(),
  expires_in: z.coerce.number().positive().default(86_400),
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
});
export type AmoToken = z.output<typeof amoTokenSchema>;

export const amoAccountSchema = z.looseObject({ id, name: z.string().optional(), subdomain: z.string().optional(), current_user_id: id.optional() });
export type AmoAccount = z.output<typeof amoAccountSchema>;

export const amoUserSchema = z.looseObject({ id, name: z.string().optional() });

export const amoStatusSchema = z.looseObject({ id, name: z.string().optional(), sort: z.number().optional(), type: z.number().optional(), pipeline_id: id.optional() });
export const amoPipelineSchema = z.looseObject({
  id,
  name: z.string().optional(),
  sort: z.number().optional(),
  is_main: z.boolean().optional(),
  is_archive: z.boolean().optional(),
  _embedded: z.looseObject({ statuses: z.array(amoStatusSchema).default([]) }).optional(),
});
export type AmoPipeline = z.output<typeof amoPipelineSchema>;
export const amoPipelineListSchema = z.looseObject({ _embedded: z.looseObject({ pipelines: z.array(amoPipelineSchema).default([]) }) });

export const amoTagSchema = z.looseObject({ id: id.optional(), name: z.string() });
export const amoLeadSchema = z.looseObject({
  id,
  name: z.string().optional(),
  price: z.number().nullish(),
  status_id: id.optional(),
  pipeline_id: id.optional(),
  is_deleted: z.boolean().optional(),
  custom_fields_values: z.array(z.looseObject({ field_id: id.optional(), field_code: z.string().nullish(), values: z.array(z.looseObject({ value: z.unknown() })).default([]) })).nullish(),
  _embedded: z.looseObject({ contacts: z.array(z.looseObject({ id })).optional(), tags: z.array(amoTagSchema).optional() }).optional(),
});
export type AmoLead = z.output<typeof amoLeadSchema>;
export const amoLeadListSchema = z.looseObject({ _embedded: z.looseObject({ leads: z.array(amoLeadSchema).default([]) }), _links: z.looseObject({ next: z.unknown().optional() }).optional() });

/** `POST /api/v4/leads/complex` answers a bare array (facts.md); `request_id` may be a list. */
export const amoComplexResultSchema = z.array(z.looseObject({ id, contact_id: id.nullish(), request_id: z.union([z.array(z.string()), z.string()]).optional() }));

export const amoCreatedListSchema = (key: 'leads' | 'contacts' | 'notes') =>
  z.looseObject({ _embedded: z.looseObject({ [key]: z.array(z.looseObject({ id, request_id: z.union([z.string(), z.number()]).optional() })) }) });

export const amoNoteSchema = z.looseObject({
  id,
  entity_id: id,
  note_type: z.string(),
  created_by: id.optional(),
  created_at: z.number().optional(),
  updated_at: z.number().optional(),
  params: z.looseObject({ text: z.string().optional(), service: z.string().optional() }).nullish(),
});
export type AmoNote = z.output<typeof amoNoteSchema>;
export const amoNoteListSchema = z.looseObject({ _embedded: z.looseObject({ notes: z.array(amoNoteSchema).default([]) }), _links: z.looseObject({ next: z.unknown().optional() }).optional() });

export const amoCustomFieldSchema = z.looseObject({ id, name: z.string().optional(), code: z.string().nullish(), type: z.string().optional() });
export const amoCustomFieldListSchema = z.looseObject({ _embedded: z.looseObject({ custom_fields: z.array(amoCustomFieldSchema).default([]) }), _links: z.looseObject({ next: z.unknown().optional() }).optional() });

export const amoWebhookSchema = z.looseObject({ id: id.optional(), destination: z.string(), settings: z.array(z.string()).optional(), disabled: z.boolean().optional() });
export const amoWebhookListSchema = z.looseObject({ _embedded: z.looseObject({ webhooks: z.array(amoWebhookSchema).default([]) }) });

export const amoEventSchema = z.looseObject({ id: z.union([z.string(), z.number()]), type: z.string(), entity_id: id.optional(), entity_type: z.string().optional(), created_at: z.number().optional(), value_after: z.unknown().optional() });
export const amoEventListSchema = z.looseObject({ _embedded: z.looseObject({ events: z.array(amoEventSchema).default([]) }), _links: z.looseObject({ next: z.unknown().optional() }).optional() });

export const amoContactListSchema = z.looseObject({ _embedded: z.looseObject({ contacts: z.array(z.looseObject({ id, name: z.string().nullish() })).default([]) }) });

/** `PATCH /api/v4/leads` and `PATCH /api/v4/contacts` (openapi.yaml LeadUpdateResponse, ContactUpdateResponse). */
export const amoUpdatedListSchema = (key: 'leads' | 'contacts') =>
  z.looseObject({ _embedded: z.looseObject({ [key]: z.array(z.looseObject({ id, updated_at: z.number().optional() })) }) });
