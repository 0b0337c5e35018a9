import { editDistance } from './strict-keys.js';

/**
 * Variables every shell or container sets: never someone's typo of ours, however close
 * (`HOME` is two edits from `HOST`, and warning about it on every command is noise).
 */
const SYSTEM_VARIABLES = new Set([
  'HOME', 'PATH', 'PWD', 'OLDPWD', 'USER', 'LOGNAME', 'SHELL', 'SHLVL', 'TERM', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR',
  'HOSTNAME', 'HOSTTYPE', 'EDITOR', 'VISUAL', 'PAGER', 'MAIL', 'DISPLAY', 'COLUMNS', 'LINES', 'NODE_ENV', 'NODE_OPTIONS', 'CI',
]);

/** Names shorter than this must be one edit away to count as a near miss (two edits turn most short words into others). */
const SHORT_NAME = 8;

/**
 * Variables that look like a mistyped one of ours (`AVITO_CLIENTID` for `AVITO_CLIENT_ID`): the
 * environment holds other programs' variables too, so these are warned about, not refused, and
 * only when they are a near miss of a variable avito-sync reads: at most 2 edits, or 1 edit for
 * names under 8 characters; the shell's own variables (`HOME`, `PATH`, `LANG`, …) never are.
 */
export function envTypos(env: NodeJS.ProcessEnv, known: readonly string[]): { name: string; suggestion: string }[] {
  const out: { name: string; suggestion: string }[] = [];
  const knownSet = new Set(known);
  for (const name of Object.keys(env)) {
    if (knownSet.has(name) || SYSTEM_VARIABLES.has(name) || name.startsWith('LC_') || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    let best: { k: string; d: number } | undefined;
    for (const k of known) {
      if (Math.abs(k.length - name.length) > 2) continue;
      const d = editDistance(name, k);
      const most = Math.min(name.length, k.length) < SHORT_NAME ? 1 : 2;
      if (d > 0 && d <= most && (!best || d < best.d)) best = { k, d };
    }
    if (best) out.push({ name, suggestion: best.k });
  }
  return out;
}
