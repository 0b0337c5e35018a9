/**
 * Checks JSON text before it is parsed, for what `JSON.parse` silently gets wrong or what later
 * code cannot survive (issue 9, items 2 and 3):
 * - integers beyond 2^53 (`JSON.parse` rounds them: two different ids would become one);
 * - nesting deeper than a bound (deep structures make recursive code downstream overflow).
 * Node 20 has no `JSON.parse` source-text access for revivers, so this scans the text once,
 * skipping strings; it does not validate the JSON (the parser does that next).
 */

/** Deeper than this is refused: Avito's webhook bodies nest 4 levels. */
export const MAX_JSON_DEPTH = 32;

export type JsonGuardProblem = { kind: 'too_deep'; depth: number } | { kind: 'unsafe_integer'; literal: string };

/** The first problem in `text`, or undefined when it may be parsed safely. */
export function jsonProblem(text: string, maxDepth = MAX_JSON_DEPTH): JsonGuardProblem | undefined {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, honouring escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return { kind: 'too_deep', depth };
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9eE.+-]/.test(text[j]!)) j++;
      const literal = text.slice(i, j);
      // Only integers can be ids; a long fraction losing digits is ordinary float behaviour.
      if (/^-?\d+$/.test(literal) && literal.replace('-', '').length >= 16 && !Number.isSafeInteger(Number(literal))) {
        return { kind: 'unsafe_integer', literal };
      }
      i = j - 1;
    }
  }
  return undefined;
}

/** The problem as one sentence for a 400 answer. */
export function describeJsonProblem(p: JsonGuardProblem): string {
  return p.kind === 'too_deep'
    ? `body nests deeper than ${MAX_JSON_DEPTH} levels`
    : `number ${p.literal.slice(0, 40)} is beyond 2^53 and would lose digits: send ids as strings`;
}
