/**
 * Helpers for showing Avito messages in a CRM, shared by connectors (exported from
 * `avito-crm-sync/connector`).
 */

/**
 * One formatter per time zone, kept: a formatter holds ICU memory outside the JS heap that is
 * freed only when the GC collects it, and the GC does not see its size — one per note grew a
 * 100,000-message backfill by some 600 MB (docs/benchmarks.md). null: the zone is unknown.
 */
const timeFormats = new Map<string, Intl.DateTimeFormat | null>();

function timeFormat(timeZone: string): Intl.DateTimeFormat | null {
  let f = timeFormats.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('ru-RU', { timeZone, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit' });
    } catch {
      f = null;
    }
    timeFormats.set(timeZone, f);
  }
  return f;
}

/**
 * An Avito time (unix seconds) as `dd.mm.yyyy, hh:mm` in `timeZone` (an IANA zone such as
 * `Europe/Moscow`); `yyyy-mm-dd hh:mm UTC` when the zone is unknown or the date out of range.
 */
export function formatAvitoTime(seconds: number, timeZone: string): string {
  try {
    const f = timeFormat(timeZone);
    if (f) return f.format(new Date(seconds * 1000));
  } catch {
    // a date out of the formatter's range: the ISO form below
  }
  return new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

/** The URL of the largest size in an Avito image's `sizes` (`{"1280x960": url, …}`), if any. */
export function largestImage(sizes: unknown): string | undefined {
  if (typeof sizes !== 'object' || sizes === null) return undefined;
  let best: [number, string] | undefined;
  for (const [k, v] of Object.entries(sizes)) {
    const m = /^(\d+)x(\d+)$/.exec(k);
    if (typeof v !== 'string') continue;
    const area = m ? Number(m[1]) * Number(m[2]) : 0;
    if (!best || area > best[0]) best = [area, v];
  }
  return best?.[1];
}
