import { describe, it } from 'vitest';
import { CASES, runCase, type ContractHarness } from './cases.js';

/**
 * Registers the contract cases with vitest. A connector's test file calls it with a harness for
 * its fake CRM; when every case passes, the connector does what the core relies on: access
 * checks, idempotent conversations, ordered delivery, no re-send after a crash (or a stable id
 * for the receiver to dedupe by, without `findDelivered`), errors classified so the core retries,
 * dead-letters or stops, and — per capability — replies, webhooks and actions.
 */
export function connectorContract<Fake>(h: ContractHarness<Fake>): void {
  describe(`connector contract: ${h.definition.id}`, () => {
    for (const c of CASES) {
      const why = c.skip?.(h.definition);
      if (why) it.skip(`${c.name} (${why})`, () => undefined);
      else it(c.name, () => runCase(h, c), 30_000);
    }
  });
}
