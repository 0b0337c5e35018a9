import { z } from 'zod';

/** `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks 1.0). */
const whsec = z
  .string()
  .trim()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64, e.g. whsec_' + 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')
  .refine((s) => {
    const n = Buffer.from(s.slice(6), 'base64').length;
    return n >= 24 && n <= 64;
  }, 'must hold 24 to 64 bytes after whsec_ (generate one: node -e "console.log(\'whsec_\'+crypto.randomBytes(32).toString(\'base64\'))")');

/** The `http` section of an account (env: HTTP_CONNECTOR_*). */
export const httpConfigSchema = z.object({
  /** Where events are POSTed. */
  url: z.string().trim().url('must be a URL like https://example.com/avito-events'),
  /** Signs outgoing events and verifies incoming replies. */
  secret: whsec,
  /** One attempt's time limit in seconds. Default 15 (Standard Webhooks suggests 15–30). */
  timeoutSeconds: z.coerce.number().min(1).max(120).default(15),
});

export type HttpConfig = z.output<typeof httpConfigSchema>;
