import cliProgress from 'cli-progress';
import type { Logger } from 'pino';

/**
 * Progress of long work: a bar with rate and ETA on a terminal, a log line every few seconds
 * otherwise (a pipe, a file, CI).
 */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private label = '';
  private lastLog = 0;

  constructor(
    private readonly log: Logger,
    private readonly tty = process.stderr.isTTY === true,
    private readonly everyMs = 5000,
  ) {}

  update(label: string, done: number, total: number, unit: string, extra: Record<string, unknown> = {}): void {
    if (this.tty) {
      if (label !== this.label) {
        this.bar?.stop();
        this.bar = new cliProgress.SingleBar(
          { format: `${label.padEnd(14)} [{bar}] {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(Math.max(total, 1), done, { rate: '0' });
        this.started = Date.now();
      }
      this.bar!.setTotal(Math.max(total, 1));
      this.bar!.update(done, { rate: ((done / Math.max(1, Date.now() - this.started)) * 1000).toFixed(1) });
    } else if (label !== this.label || Date.now() - this.lastLog >= this.everyMs || done === total) {
      this.lastLog = Date.now();
      this.log.info({ phase: label, done, total, ...extra }, `${label}: ${done}/${total} ${unit}`);
    }
    this.label = label;
  }

  private started = Date.now();

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
