/**
 * `avito-crm-sync/connector-kit`: the contract test kit (vitest is an optional peer dependency of
 * the package; this entry needs it). A connector's test:
 *
 * ```ts
 * import { connectorContract } from 'avito-crm-sync/connector-kit';
 * connectorContract({ definition, startFake, stopFake, config, deliveredIds, inject, clearFaults });
 * ```
 */
export { connectorContract } from './kit.js';
export { CASES, ContractFailure, chat, chatWithoutDetails, message, runCase, runContract, type CaseEnv, type CaseResult, type ContractCase, type ContractHarness } from './cases.js';
export { FAST_RETRY, createTestBench, createTestContext, type DispatchResult, type FailureHandling, type TestBench } from './harness.js';
