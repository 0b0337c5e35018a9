import os from 'node:os';
import { fmt, median, PRODUCT_NODE_FLAGS, runJsonProcess, startJsonProcess } from './util.js';

interface Run { mode: string; ms: number; cpuMs: number; requests: number; messages: number; maxRssMb: number; setupMs?: number; closeMs?: number }
type Mode = 'bare' | 'bare-http' | 'ours' | 'ours-routed';

const load = () => os.loadavg().map((l) => fmt(l, 2)).join(', ');
const spread = (xs: readonly number[], digits = 0) => `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`;

/** Round-trip time the second scenario gives the fake Avito (see docs/benchmarks.md: an assumption, not a measurement of Avito). */
const REMOTE_RTT_MS = 20;

/**
 * Alternating rounds against one fake Avito (own process): in round i the modes go in a rotated
 * order, so none always follows another; each run is a fresh process.
 */
async function rounds(fakeArgs: string[], modes: readonly Mode[], count: number): Promise<{ runs: Map<Mode, Run[]>; loadBefore: string; loadAfter: string }> {
  const { child, first: fake } = await startJsonProcess<{ url: string; clientId: string; clientSecret: string; userId: number }>('fake-avito-server.js', fakeArgs);
  try {
    const args = [fake.url, fake.clientId, fake.clientSecret, String(fake.userId)];
    const runs = new Map<Mode, Run[]>(modes.map((m) => [m, []]));
    const loadBefore = load();
    // Warm the fake once so neither side pays its JIT.
    await runJsonProcess<Run>('ingest-worker.js', ['bare', ...args]);
    for (let i = 0; i < count; i++) {
      const order = modes.map((_, k) => modes[(i + k) % modes.length]!);
      // Our pass runs with the V8 flags avito-sync starts with; the bare loops with node's own.
      for (const mode of order) runs.get(mode)!.push(await runJsonProcess<Run>('ingest-worker.js', [mode, ...args], mode.startsWith('ours') ? PRODUCT_NODE_FLAGS : []));
    }
    return { runs, loadBefore, loadAfter: load() };
  } finally {
    child.kill('SIGTERM');
  }
}

function ratioLine(label: string, ours: readonly Run[], base: readonly Run[]): string {
  const o = median(ours.map((r) => r.ms));
  const b = median(base.map((r) => r.ms));
  const ratios = ours.map((r, i) => r.ms / base[i]!.ms);
  const cpuRatios = ours.map((r, i) => r.cpuMs / base[i]!.cpuMs);
  return `${label}: **${fmt(o / b, 2)}×** (ratio of medians); per round: median ${fmt(median(ratios), 2)}×, spread ${spread(ratios, 2)}×; CPU per round: median ${fmt(median(cpuRatios), 2)}×.`;
}

function row(label: string, runs: readonly Run[]): string {
  const m = median(runs.map((r) => r.ms));
  const r0 = runs[0]!;
  return `| ${label} | ${fmt(m, 0)} ms | ${spread(runs.map((r) => r.ms))} ms | ${fmt(median(runs.map((r) => r.cpuMs)), 0)} ms | ${fmt(r0.messages / (m / 1000), 0)} | ${r0.requests} | ${fmt(r0.requests / r0.messages, 4)} | ${fmt(median(runs.map((r) => r.maxRssMb)))} MB |`;
}

/**
 * Ingest: 200 chats × 100 messages from the fake Avito (own process, no rate limit) into the
 * ledger, against bare loops doing the same pagination with four requests in flight and parsing
 * every page's JSON: `fetch` (the goal's baseline) and node:http (the product's transport, a
 * stricter one). First on loopback with no delay, then with the fake answering after a
 * ${REMOTE_RTT_MS} ms round trip, as a remote server would. The ratios are given as the ratio
 * of medians and as the median and spread of the per-round ratios (a round's runs are next to
 * each other in time, so a change in the machine's load moves them together).
 */
export async function ingestBench(count = 7, remoteCount = 5): Promise<string> {
  const seed = ['--chats=200', '--messages=100'];
  const local = await rounds(seed, ['bare', 'bare-http', 'ours', 'ours-routed'], count);
  const remote = await rounds([...seed, `--latency-ms=${REMOTE_RTT_MS}`], ['bare', 'ours'], remoteCount);
  const ours = local.runs.get('ours')!;
  const lines = [
    '### Ingest (issue 2, issue 13 item 1): 200 chats × 100 messages, fake Avito without rate limit',
    '',
    `| | median time | spread | CPU (median) | messages/s | Avito requests | requests/message | peak RSS |`,
    `|---|---|---|---|---|---|---|---|`,
    row('bare loop (`fetch`, JSON parsed), 4 in flight, stores nothing', local.runs.get('bare')!),
    row('bare loop (node:http kept alive, JSON parsed), 4 in flight, stores nothing', local.runs.get('bare-http')!),
    row('avito-sync poller → SQLite ledger (the pass)', ours),
    row('the same, with a CRM routed (a delivery row per message, the connector not running)', local.runs.get('ours-routed')!),
    row(`bare loop (\`fetch\`), fake answering after ${REMOTE_RTT_MS} ms`, remote.runs.get('bare')!),
    row(`avito-sync poller → SQLite ledger, fake answering after ${REMOTE_RTT_MS} ms`, remote.runs.get('ours')!),
    '',
    `${ratioLine('Ratio ours / bare `fetch` loop (goal ≤ 1.10×)', ours, local.runs.get('bare')!)} ${count} rounds.`,
    `${ratioLine('Ratio ours / bare node:http loop', ours, local.runs.get('bare-http')!)}`,
    `${ratioLine('With a CRM routed, ours / bare `fetch` loop', local.runs.get('ours-routed')!, local.runs.get('bare')!)}`,
    `${ratioLine(`With a ${REMOTE_RTT_MS} ms round trip, ours / bare \`fetch\` loop`, remote.runs.get('ours')!, remote.runs.get('bare')!)} ${remoteCount} rounds.`,
    `Runs (ms), loopback: bare ${local.runs.get('bare')!.map((r) => fmt(r.ms, 0)).join(', ')}; bare node:http ${local.runs.get('bare-http')!.map((r) => fmt(r.ms, 0)).join(', ')}; ours ${ours.map((r) => fmt(r.ms, 0)).join(', ')}.`,
    `Outside the timed pass: a fresh ledger's creation and migrations ${fmt(median(ours.map((r) => r.setupMs ?? 0)), 0)} ms, closing it ${fmt(median(ours.map((r) => r.closeMs ?? 0)), 0)} ms (medians). Load average (1, 5, 15 min): loopback rounds ${local.loadBefore} → ${local.loadAfter}; remote rounds ${remote.loadBefore} → ${remote.loadAfter}.`,
  ];
  return lines.join('\n');
}
