import { editDistance } from './strict-keys.js';

/**
 * Variables that look like a mistyped one of ours (`AVITO_CLIENTID` for `AVITO_CLIENT_ID`): the
 * environment holds other programs' variables too, so these are warned about, not refused, and
 * only when they are a near miss (at most 2 edits) of a variable avito-sync reads.
 */
export function envTypos(env: NodeJS.ProcessEnv, known: readonly string[]): { name: string; suggestion: string }[] {
  const out: { name: string; suggestion: string }[] = [];
  const knownSet = new Set(known);
  for (const name of Object.keys(env)) {
    if (knownSet.has(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    let best: { k: string; d: number } | undefined;
    for (const k of known) {
      if (Math.abs(k.length - name.length) > 2) continue;
      const d = editDistance(name, k);
      if (d > 0 && d <= 2 && (!best || d < best.d)) best = { k, d };
    }
    if (best) out.push({ name, suggestion: best.k });
  }
  return out;
}
