/**
 * PHP-style query strings, the form Bitrix24 speaks: `batch` commands are `method?fields[TITLE]=…`
 * strings (b24restdocs `settings/how-to-call-rest-api/batch.md`), and outbound webhook events are
 * form bodies with keys like `data[FIELDS][ID]`.
 */

/** `$result[key]` (or `$result[key][FIELD]`): an earlier batch command's result, left unencoded for Bitrix24 to substitute. */
export const RESULT_REF = /^\$result\[[A-Za-z0-9_]+\](\[[A-Za-z0-9_]+\])*$/;

type Value = string | number | boolean | null | undefined | readonly Value[] | { readonly [k: string]: Value };

/** `{fields: {TITLE: 'x', WEB: [{VALUE: 'y'}]}}` → `fields[TITLE]=x&fields[WEB][0][VALUE]=y` (null and undefined left out). */
export function buildQuery(params: Record<string, Value>): string {
  const out: string[] = [];
  const walk = (key: string, v: Value): void => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(`${key}[${i}]`, x));
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(`${key}[${k}]`, x);
    else if (typeof v === 'string' && RESULT_REF.test(v)) out.push(`${encodeURIComponent(key).replace(/%5B/g, '[').replace(/%5D/g, ']')}=${v}`);
    else out.push(`${encodeURIComponent(key).replace(/%5B/g, '[').replace(/%5D/g, ']')}=${encodeURIComponent(typeof v === 'boolean' ? (v ? 'Y' : 'N') : String(v))}`);
  };
  for (const [k, v] of Object.entries(params)) walk(k, v);
  return out.join('&');
}

export type Parsed = string | Parsed[] | { [k: string]: Parsed };

/** The reverse: `a[b][0]=x&a[c]=y` → `{a: {b: {0: 'x'}, c: 'y'}}` (numeric keys stay object keys; `[]` appends). */
export function parseQuery(query: string): Record<string, Parsed> {
  const root: Record<string, Parsed> = {};
  for (const [rawKey, value] of new URLSearchParams(query)) {
    const m = /^([^[]+)((?:\[[^\]]*\])*)$/.exec(rawKey);
    const path = m ? [m[1]!, ...[...m[2]!.matchAll(/\[([^\]]*)\]/g)].map((x) => x[1]!)] : [rawKey];
    let node: Record<string, Parsed> = root;
    for (let i = 0; i < path.length; i++) {
      let k = path[i]!;
      if (k === '') k = String(Object.keys(node).length);
      if (i === path.length - 1) node[k] = value;
      else {
        const next = node[k];
        if (typeof next !== 'object' || next === null || Array.isArray(next)) node[k] = {};
        node = node[k] as Record<string, Parsed>;
      }
    }
  }
  return root;
}
