/** The configuration file, its schema, provider profiles and hot reload (see each module). */
export { ConfigError, LAST_KNOWN_GOOD_FILE, expandDottedKeys, lastKnownGoodPath, loadConfig, overridesFromAssignments, redactConfig, saveLastKnownGood } from './load.js';
export type { ConfigEvent, LastKnownGood, LoadOptions, LoadedConfig } from './load.js';
export { classifyChanges, diffConfigs, watchConfig } from './watch.js';
export type { ConfigChange, ConfigWatcher, WatchOptions } from './watch.js';
export {
  PLACEHOLDERS,
  defaultProfilesDir,
  engineCacheDir,
  listProfiles,
  readProfileFile,
  resolveProfile,
  sessionOptionsFromConfig,
  sha256File,
} from './profiles.js';
export type { EngineCacheKey, LoadedProfile, SessionContext } from './profiles.js';
export { HOT_KEYS, PRECISIONS, PROVIDER_NAMES, configSchema, describeKeys, envName, isHotKey, keysTableMarkdown, profileSchema } from './schema.js';
export type { Config, ConfigLayer, KeyDescription, Precision, Profile, ProviderName, ProviderSpec } from './schema.js';
export { formatIssue } from './schema-kit.js';
export type { ConfigIssue, IssueKind } from './schema-kit.js';
