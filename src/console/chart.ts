import type { HourActivity } from '../ledger/activity.js';
import { esc, type Html } from './html.js';

const W = 720;
const H = 180;
const PAD = { left: 34, right: 10, top: 12, bottom: 26 };

/**
 * Messages in and replies out per hour as an inline SVG bar chart: two bars per hour, a scale on
 * the left, a time label every few hours. No script and no external file.
 */
export function activityChart(hours: readonly HourActivity[]): Html {
  const max = Math.max(1, ...hours.map((h) => Math.max(h.messagesIn, h.repliesOut)));
  const top = niceCeil(max);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, hours.length);
  const bar = Math.max(1, (slot - 2) / 2);
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const parts: string[] = [];
  for (const t of top >= 2 ? [0, top / 2, top] : [0, top]) {
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#dde2e8"/>`);
    parts.push(`<text x="${PAD.left - 4}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#6b7686">${esc(Number.isInteger(t) ? t : t.toFixed(1))}</text>`);
  }
  const labelEvery = Math.max(1, Math.ceil(hours.length / 8));
  hours.forEach((h, i) => {
    const x = PAD.left + i * slot + 1;
    const title = `${new Date(h.hour).toISOString().slice(0, 13).replace('T', ' ')}:00 UTC — ${h.messagesIn} in, ${h.repliesOut} out`;
    if (h.messagesIn) parts.push(`<rect x="${x.toFixed(1)}" y="${y(h.messagesIn).toFixed(1)}" width="${bar.toFixed(1)}" height="${(PAD.top + plotH - y(h.messagesIn)).toFixed(1)}" fill="#2459c5"><title>${esc(title)}</title></rect>`);
    if (h.repliesOut) parts.push(`<rect x="${(x + bar).toFixed(1)}" y="${y(h.repliesOut).toFixed(1)}" width="${bar.toFixed(1)}" height="${(PAD.top + plotH - y(h.repliesOut)).toFixed(1)}" fill="#11a36a"><title>${esc(title)}</title></rect>`);
    if (i % labelEvery === 0) parts.push(`<text x="${(x + bar).toFixed(1)}" y="${H - 8}" text-anchor="middle" font-size="10" fill="#6b7686">${esc(new Date(h.hour).toISOString().slice(11, 13))}h</text>`);
  });
  const totalIn = hours.reduce((s, h) => s + h.messagesIn, 0);
  const totalOut = hours.reduce((s, h) => s + h.repliesOut, 0);
  return (
    `<svg id="activity-chart" role="img" aria-label="messages in and replies out per hour" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" style="background:#fff;border:1px solid #dde2e8">` +
    parts.join('') +
    `</svg><p class="small"><span style="color:#2459c5">■</span> messages in (${totalIn}) &nbsp; <span style="color:#11a36a">■</span> replies out (${totalOut}) — per hour, UTC, last ${hours.length} h</p>`
  );
}

/** 1, 2, 5, 10, 20, 50…: a round top for the scale. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
