import cliProgress from 'cli-progress';
import type { Logger } from 'pino';
import { stderrGuard } from '../log/logger.js';

/** Shows the cursor again: cli-progress hides it while a bar runs. */
const SHOW_CURSOR = '\x1b[?25h';

/**
 * Progress of long work: a bar with rate and ETA on a terminal, a log line every few seconds
 * otherwise (a pipe, a file, CI). When the total is not known yet (`total` 0), a counter
 * without a bar. Log lines written while a bar shows clear its line first and the bar is drawn
 * again below them, so multi-line log lines do not break it.
 */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private label = '';
  private lastLog = 0;
  private started = Date.now();
  private counter = false;

  constructor(
    private readonly log: Logger,
    private readonly tty = process.stderr.isTTY === true,
    private readonly everyMs = 5000,
  ) {}

  update(label: string, done: number, total: number, unit: string, extra: Record<string, unknown> = {}): void {
    const counter = total <= 0;
    if (this.tty) {
      if (label !== this.label || counter !== this.counter) {
        this.stop();
        const format = counter
          ? `${label.padEnd(14)} {value} ${unit} | {rate}/s{extra}`
          : `${label.padEnd(14)} [{bar}] {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}{extra}`;
        this.bar = new cliProgress.SingleBar({ format, hideCursor: true, stream: process.stderr, etaBuffer: 50, noTTYOutput: false }, cliProgress.Presets.shades_classic);
        this.bar.start(counter ? 0 : Math.max(total, 1), done, { rate: '0', extra: '' });
        this.started = Date.now();
        this.counter = counter;
        const bar = this.bar;
        stderrGuard.before = () => process.stderr.write('\r\x1b[2K');
        stderrGuard.after = () => (bar as unknown as { render?: () => void }).render?.();
      }
      if (!counter) this.bar!.setTotal(Math.max(total, 1));
      const messages = (typeof extra.messages === 'number' && unit !== 'messages' ? ` | ${extra.messages} messages` : '') + (typeof extra.delivered === 'number' && unit !== 'messages' ? ` | ${extra.delivered} delivered` : '');
      this.bar!.update(done, { rate: ((done / Math.max(1, Date.now() - this.started)) * 1000).toFixed(1), extra: messages });
    } else if (label !== this.label || Date.now() - this.lastLog >= this.everyMs || done === total) {
      this.lastLog = Date.now();
      this.log.info({ phase: label, done, total, ...extra }, counter ? `${label}: ${done} ${unit}` : `${label}: ${done}/${total} ${unit}`);
    }
    this.label = label;
  }

  /** Removes the bar and gives the terminal its cursor back (also on Ctrl-C). */
  stop(): void {
    stderrGuard.before = undefined;
    stderrGuard.after = undefined;
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
      if (this.tty) process.stderr.write(SHOW_CURSOR);
    }
  }
}
