/**
 * The feature definitions a command works with: the file `features.definitions` of the
 * configuration names (see `definitionsPath` for how a relative path is found).
 */
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { loadConfiguredDefinitions } from '../../runtime/features/definitions.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';

/** Reads and validates the definitions of `config`. Throws `ConfigError` naming the file and key. */
export function featureDefinitionsOf(config: Pick<ResolvedConfig, 'features'>): FeatureDefinitions {
  return loadConfiguredDefinitions(config.features);
}
