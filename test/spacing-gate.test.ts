import { describe, expect, it } from 'vitest';
import { SpacingGate } from '../src/http/spacing-gate.js';

describe('SpacingGate', () => {
  it('reserves start slots: concurrent callers never start closer than the interval', async () => {
    const gate = new SpacingGate(20);
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async () => {
      await gate.wait();
      starts.push(Date.now());
    }));
    starts.sort((a, b) => a - b);
    // Timers fire late, never early; Date.now() has 1 ms resolution.
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(19);
  });

  it('holdFor pushes the next start back (after a 429)', async () => {
    const gate = new SpacingGate(1);
    await gate.wait();
    gate.holdFor(50);
    const before = Date.now();
    await gate.wait();
    expect(Date.now() - before).toBeGreaterThanOrEqual(49);
  });
});
