import type { ConnectorDefinition } from '../src/connector-sdk/index.js';
import { amocrm } from './amocrm/index.js';
import { bitrix24 } from './bitrix24/index.js';
import { http } from './http/index.js';

/**
 * Every connector this build knows, in one explicit list. A new connector is a folder next to
 * `amocrm/` and one line here; `AVITO_SYNC_CONNECTORS` picks which run.
 */
export const CONNECTORS: readonly ConnectorDefinition[] = [amocrm, bitrix24, http];
