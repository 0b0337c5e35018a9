/**
 * A schema issue in the user's words: the bad value echoed back and what it must be instead
 * (`"eighty" is not a number`), never zod's own wording (`expected number, received NaN`).
 */

interface IssueLike {
  code?: string;
  message: string;
  expected?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  origin?: string;
  values?: readonly unknown[];
  format?: string;
}

/** zod's default messages start like this; a message we wrote ourselves does not. */
const ZOD_WORDING = /^(Invalid|Too (small|big)|Expected|Unrecognized|Required)/;

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return JSON.stringify(value).slice(0, 80);
  return JSON.stringify(value) ?? String(value);
}

function numeric(origin: string | undefined): boolean {
  return origin === 'number' || origin === 'int' || origin === 'bigint';
}

export function describeProblem(issue: IssueLike, value: unknown): string {
  const got = value === undefined ? '' : `${shown(value)} `;
  const i = issue;
  switch (i.code) {
    case 'invalid_type':
      if (value === undefined) return 'it is required';
      if (i.expected === 'number' || i.expected === 'int') return `${got}is not a number`;
      if (i.expected === 'array') return `${got}is not a list`;
      if (i.expected === 'object') return `${got}must be a section with keys, not a single value`;
      return `${got}must be a ${String(i.expected)}`;
    case 'too_small':
      if (numeric(i.origin)) return `${got}is too small: it must be at least ${String(i.minimum)}`;
      if (i.origin === 'array') return `${got}must name at least ${String(i.minimum)}`;
      return `${got}is too short: at least ${String(i.minimum)} character(s)`;
    case 'too_big':
      if (numeric(i.origin)) return `${got}is too large: it must be at most ${String(i.maximum)}`;
      return `${got}is too long: at most ${String(i.maximum)}`;
    case 'invalid_value':
      return `${got}is not one of ${(i.values ?? []).map((v) => String(v)).join(', ')}`;
    default:
      break;
  }
  if (!ZOD_WORDING.test(i.message)) return value === undefined ? i.message : `${shown(value)}: ${i.message}`;
  if (i.format === 'url') return `${got}is not a URL like https://example.com`;
  return `${got}is not valid`;
}
