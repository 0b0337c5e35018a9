import { CONNECTORS } from '../../connectors/index.js';
import type { ConnectorDefinition } from '../connector-sdk/contract.js';

/**
 * The connectors shipped in this package (`connectors/index.ts`): the one place `src/` reaches
 * into `connectors/`. External ones come from `connectorModules` (load-modules.ts).
 */
export const BUILT_IN_CONNECTORS: readonly ConnectorDefinition[] = CONNECTORS;
