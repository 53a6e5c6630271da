/**
 * Provider profiles (deploy/profiles/*.yaml): a named, reviewed list of execution providers with
 * their options for one kind of board, and the model precision it is made for.
 *
 * Option values may use placeholders, filled when the session is created:
 *   ${state_dir}         the config's state_dir
 *   ${provider}          the provider's name, lower case ("tensorrt")
 *   ${model_sha256}      sha256 of the model file (hex)
 *   ${ort_version}       version of the loaded ONNX Runtime library ("1.30.0")
 *   ${engine_cache_dir}  <state_dir>/engine-cache/<model sha256, first 16 hex>-<provider>-ort<ort version>
 *
 * Why the engine cache is keyed that way: a TensorRT engine (or an OpenVINO blob) is only valid for
 * the exact model, the provider that built it and the runtime build that loaded it. ONNX Runtime
 * does not always notice when one of them changes and can load a stale engine; a folder per
 * (model, provider, library version) makes a model update or a library upgrade start a fresh
 * cache, while a restart with the same three reuses the engine (minutes of build time on a Jetson).
 * Old folders are left in place; deleting `<state_dir>/engine-cache` is always safe.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { SessionOptions } from '../runtime/native/runtime.js';
import { parseDocumentText } from './parse.js';
import { didYouMean, INVALID, type ConfigIssue } from './schema-kit.js';
import { profileSchema, type Config, type Profile, type ProviderSpec } from './schema.js';

export const PLACEHOLDERS = ['state_dir', 'provider', 'model_sha256', 'ort_version', 'engine_cache_dir'] as const;
const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** deploy/profiles of this package, found from this module's location (src/ or dist/src/). */
export function defaultProfilesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'deploy', 'profiles');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'profiles');
}

/** Names of the shipped profiles (file stems), sorted. */
export function listProfiles(profilesDir: string = defaultProfilesDir()): string[] {
  if (!existsSync(profilesDir)) return [];
  return readdirSync(profilesDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

export interface LoadedProfile {
  readonly profile: Profile;
  /** Absolute path of the profile file. */
  readonly file: string;
}

export interface ProfileLookup {
  /** Folder of the config file: a profile given as a relative path is taken from there. */
  readonly baseDir: string;
  readonly profilesDir?: string;
  /** Where the reference came from, for messages (file, variable, `cli`). */
  readonly source: string;
}

/** Unknown `${...}` names in option values, as [provider index, option key, message]. */
export function placeholderProblems(providers: readonly ProviderSpec[]): [number, string, string][] {
  const out: [number, string, string][] = [];
  providers.forEach((p, i) => {
    for (const [k, v] of Object.entries(p.options)) {
      if (typeof v !== 'string') continue;
      for (const m of v.matchAll(PLACEHOLDER)) {
        if ((PLACEHOLDERS as readonly string[]).includes(m[1])) continue;
        const near = didYouMean(m[1], PLACEHOLDERS);
        out.push([i, k, `unknown placeholder \${${m[1]}}${near ? ` (did you mean \${${near}}?)` : ''}; known: ${PLACEHOLDERS.join(', ')}`]);
      }
    }
  });
  return out;
}

/** Reads and validates one profile file; every problem is returned, nothing is thrown. */
export function readProfileFile(file: string): { profile?: LoadedProfile; issues: ConfigIssue[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { issues: [{ source: file, path: '', kind: 'parse', message: `cannot read profile: ${(err as Error).message}` }] };
  }
  const doc = parseDocumentText(text, file);
  if (doc.issues.length > 0) return { issues: doc.issues };
  const issues: ConfigIssue[] = [];
  const value = profileSchema.check(doc.value ?? {}, [], { source: file, baseDir: dirname(file), issues, lineOf: doc.lineOf }, false);
  if (value === INVALID) return { issues };
  const stem = basename(file).replace(/\.ya?ml$/, '');
  if (value.name !== stem) {
    issues.push({ source: file, path: 'name', kind: 'constraint', message: `${JSON.stringify(value.name)} differs from the file name (${stem})` });
  }
  for (const [i, k, message] of placeholderProblems(value.providers)) {
    const line = doc.lineOf(['providers', i, 'options', k]);
    issues.push({ source: file, path: `providers[${i}].options.${k}`, kind: 'format', message, ...(line ? { line } : {}) });
  }
  checkProviderOrder(value.providers, (i, message) =>
    issues.push({ source: file, path: `providers[${i}]`, kind: 'constraint', message }),
  );
  return issues.length > 0 ? { issues } : { profile: { profile: value, file }, issues };
}

/** Providers after CPU would never be used, and a provider listed twice is a copy-paste mistake. */
export function checkProviderOrder(providers: readonly ProviderSpec[], onIssue: (index: number, message: string) => void): void {
  const seen = new Set<string>();
  providers.forEach((p, i) => {
    if (seen.has(p.name)) onIssue(i, `${p.name} is listed twice`);
    seen.add(p.name);
    if (p.name === 'CPU' && i < providers.length - 1) onIssue(i, 'CPU must be the last provider (the ones after it are never used)');
  });
}

/** Resolves `runtime.profile` (a shipped name or a .yaml path) and loads it. */
export function resolveProfile(ref: string, lookup: ProfileLookup): { profile?: LoadedProfile; issues: ConfigIssue[] } {
  const dir = lookup.profilesDir ?? defaultProfilesDir();
  if (/\.ya?ml$/.test(ref)) {
    const file = isAbsolute(ref) ? ref : resolve(lookup.baseDir, ref);
    if (!existsSync(file)) {
      return { issues: [{ source: lookup.source, path: 'runtime.profile', kind: 'format', message: `profile file ${file} does not exist` }] };
    }
    return readProfileFile(file);
  }
  const names = listProfiles(dir);
  if (!names.includes(ref)) {
    const near = didYouMean(ref, names);
    return {
      issues: [
        {
          source: lookup.source,
          path: 'runtime.profile',
          kind: 'enum',
          message: `${JSON.stringify(ref)} is not a shipped profile${near ? ` (did you mean "${near}"?)` : ''}; known: ${names.join(', ')}`,
        },
      ],
    };
  }
  const file = existsSync(join(dir, `${ref}.yaml`)) ? join(dir, `${ref}.yaml`) : join(dir, `${ref}.yml`);
  return readProfileFile(file);
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

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
export function sessionOptionsFromConfig(config: Config, context: SessionContext = {}): SessionOptions {
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
