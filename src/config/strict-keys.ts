import type { z } from 'zod';

/**
 * Strict configuration: a key the schema does not know is refused, with the nearest known key
 * as a suggestion (`pollIntervalSecond` → did you mean `pollIntervalSeconds`?). A typo silently
 * dropped would leave the default in force without a word, which is how a mistyped
 * `pipelineId` sends every lead to the wrong pipeline.
 *
 * The check walks any zod 4 schema next to the value, so a connector's own `configSchema`
 * (written with a plain `z.object`) is checked the same way as the core's, at every level.
 */

export interface UnknownKey {
  /** Where the key sits, e.g. `['accounts', 0, 'avito', 'chatType']`. */
  path: (string | number)[];
  /** The closest known key at that level, when one is close enough. */
  suggestion: string | undefined;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Peels wrappers (optional, default, pipe, transform…) down to the schema that reads the value. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const d = defOf(s);
    if (d.innerType && ['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success'].includes(d.type)) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = defOf(d.in).type === 'transform' && d.out ? d.out : d.in;
    else if (d.type === 'lazy' && d.getter) s = d.getter();
    else break;
  }
  return s;
}

/** Levenshtein distance, case-insensitive (`pipelineID` is one step from `pipelineId`, not two). */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** The known key nearest to `key`, if it is within a third of its length (at least 2 edits). */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(key, k);
    if (!best || d < best.d) best = { k, d };
  }
  if (!best) return undefined;
  return best.d <= Math.max(2, Math.floor(key.length / 3)) ? best.k : undefined;
}

/**
 * Every key in `value` that `schema` does not declare, at every depth. Objects declared with a
 * catch-all (`z.looseObject`, `z.record`) accept anything at their level; `extraKeys` adds
 * keys accepted at the top level (e.g. connector sections on an account).
 */
export function unknownKeys(schema: z.ZodType, value: unknown, path: (string | number)[] = [], extraKeys: readonly string[] = []): UnknownKey[] {
  const s = unwrap(schema);
  const d = defOf(s);
  const out: UnknownKey[] = [];
  if (value === null || typeof value !== 'object') return out;
  if (d.type === 'object' && d.shape && !Array.isArray(value)) {
    const known = Object.keys(d.shape);
    const open = d.catchall !== undefined && !['never'].includes(defOf(d.catchall).type);
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const child = d.shape[k];
      if (child) out.push(...unknownKeys(child, v, [...path, k]));
      else if (!open && !extraKeys.includes(k)) out.push({ path: [...path, k], suggestion: suggest(k, [...known, ...extraKeys]) });
    }
  } else if (d.type === 'array' && d.element && Array.isArray(value)) {
    value.forEach((v, i) => out.push(...unknownKeys(d.element!, v, [...path, i])));
  } else if ((d.type === 'union' || d.type === 'intersection') && d.options) {
    // A key is unknown only when no branch knows it: take the branch with the fewest complaints.
    const each = d.options.map((o) => unknownKeys(o, value, path, extraKeys));
    const fewest = each.reduce((a, b) => (b.length < a.length ? b : a), each[0] ?? []);
    out.push(...fewest);
  }
  return out;
}
