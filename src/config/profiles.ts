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

import { parseDocumentText, readConfigText } from './parse.js';
import { didYouMean, INVALID, type ConfigIssue } from './schema-kit.js';
import { profileSchema, type Profile, type ProviderSpec } from './schema.js';
import { PLACEHOLDER, PLACEHOLDERS } from './session-options.js';

// Session options (placeholders, engine cache folders) live in session-options.ts, which the worker
// loads without this module's YAML parser; re-exported here for existing importers.
export { PLACEHOLDERS, engineCacheDir, sessionOptionsFromConfig, type EngineCacheKey, type SessionContext } from './session-options.js';

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
    text = readConfigText(file);
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
