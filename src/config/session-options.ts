/**
 * Session options from a loaded config: the provider plan with every `${...}` placeholder filled
 * (see profiles.ts for the placeholders and why the engine cache is keyed as it is). Kept apart from
 * profiles.ts so the worker process can use it without loading the YAML parser on every (re)start.
 */
import { join } from 'node:path';

import type { SessionOptions } from '../runtime/native/runtime.js';
import type { Config } from './schema.js';

export const PLACEHOLDERS = ['state_dir', 'provider', 'model_sha256', 'ort_version', 'engine_cache_dir'] as const;
export const PLACEHOLDER = /\$\{([^}]*)\}/g;

export interface EngineCacheKey {
  readonly stateDir: string;
  readonly modelSha256: string;
  readonly provider: string;
  readonly ortVersion: string;
}

/** `<state_dir>/engine-cache/<sha256[0:16]>-<provider>-ort<version>` (see the module comment for why). */
export function engineCacheDir(key: EngineCacheKey): string {
  if (!/^[0-9a-f]{16,}$/i.test(key.modelSha256)) throw new RangeError(`model sha256 must be hex, got ${JSON.stringify(key.modelSha256)}`);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return join(key.stateDir, 'engine-cache', `${key.modelSha256.slice(0, 16).toLowerCase()}-${safe(key.provider.toLowerCase())}-ort${safe(key.ortVersion)}`);
}

export interface SessionContext {
  /** sha256 of the model file; needed when an option uses ${model_sha256} or ${engine_cache_dir}. */
  readonly modelSha256?: string;
  /** OnnxRuntime.info.version; needed when an option uses ${ort_version} or ${engine_cache_dir}. */
  readonly ortVersion?: string;
}

function optionText(value: string | number | boolean): string {
  // ONNX Runtime parses boolean provider options from "1"/"0" (some providers reject "true").
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/**
 * The native SessionOptions for a config returned by loadConfig (runtime.providers is then filled
 * from the profile when the config gave none). Placeholders in option values are substituted here.
 */
export function sessionOptionsFromConfig(config: Pick<Config, 'runtime' | 'state_dir'>, context: SessionContext = {}): SessionOptions {
  const providers = config.runtime.providers;
  if (providers === null) throw new Error('runtime.providers is null: pass a config returned by loadConfig(), which fills it from the profile');
  return {
    intraOpThreads: config.runtime.threads,
    graphOptimization: 'all',
    strict: config.runtime.strict,
    providers: providers.map((p, i) => {
      const options: Record<string, string> = {};
      for (const [k, raw] of Object.entries(p.options)) {
        options[k] = optionText(raw).replace(PLACEHOLDER, (_, name: string) => {
          const where = `runtime.providers[${i}].options.${k}`;
          const need = (v: string | undefined, what: string): string => {
            if (v === undefined) throw new Error(`${where} uses \${${name}}: pass ${what} to sessionOptionsFromConfig`);
            return v;
          };
          switch (name) {
            case 'state_dir':
              return config.state_dir;
            case 'provider':
              return p.name.toLowerCase();
            case 'model_sha256':
              return need(context.modelSha256, 'modelSha256');
            case 'ort_version':
              return need(context.ortVersion, 'ortVersion');
            case 'engine_cache_dir':
              return engineCacheDir({
                stateDir: config.state_dir,
                modelSha256: need(context.modelSha256, 'modelSha256'),
                provider: p.name,
                ortVersion: need(context.ortVersion, 'ortVersion'),
              });
            default:
              throw new Error(`${where}: unknown placeholder \${${name}}`);
          }
        });
      }
      return { name: p.name, options };
    }),
  };
}
