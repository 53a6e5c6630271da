/**
 * Loading the configuration: embedded defaults < config file < LVUNET_* environment < CLI
 * overrides, each layer validated on its own so that every message names where the bad value came
 * from (the file and line, the variable, or `cli`), then the merged result validated as a whole.
 *
 * Start-up resilience: after the worker has started with a config, the caller saves it as the
 * last-known-good (saveLastKnownGood). If the file is later broken (a bad edit, a half-finished
 * provisioning run), loadConfig({ lastKnownGood: true }) runs the saved copy instead and returns a
 * `config.fallback` event the caller must log and publish: a cart keeps working, but never silently
 * on a config other than the one on disk.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir as osHomedir, hostname as osHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { writeFileAtomic } from '../util/files.js';
import { parseDocumentText, readConfigText } from './parse.js';
import { checkProviderOrder, placeholderProblems, resolveProfile, type LoadedProfile } from './profiles.js';
import {
  didYouMean,
  formatIssue,
  INVALID,
  isPlainObject,
  ObjectSchema,
  show,
  type CheckContext,
  type ConfigIssue,
  type DefaultContext,
  type PathSegment,
  type Schema,
} from './schema-kit.js';
import { configSchema, envName, leafKeys, type Config, type ConfigLayer } from './schema.js';

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], headline?: string) {
    const head = headline ?? `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'})`;
    super(`${head}:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export type ConfigEvent =
  | {
      readonly type: 'config.fallback';
      readonly level: 'error';
      readonly message: string;
      /** The config file that failed. */
      readonly file: string;
      readonly issues: readonly ConfigIssue[];
      readonly lastKnownGood: { readonly path: string; readonly savedAt: string; readonly fileSha256: string | null };
    }
  | { readonly type: 'config.warning'; readonly level: 'warn'; readonly key: string; readonly message: string };

export interface LoadedConfig {
  /** Complete and valid; runtime.providers and mqtt.queue.dir are always filled in. */
  readonly config: Config;
  readonly profile: LoadedProfile;
  /** Whether runtime.providers came from the profile or was given explicitly. */
  readonly providersFrom: 'profile' | 'config';
  /** Absolute path of the config file, or null when running on defaults. */
  readonly file: string | null;
  readonly fileSha256: string | null;
  /** The validated file layer (relative paths resolved): what saveLastKnownGood stores. */
  readonly fileLayer: ConfigLayer;
  /** Which layer set each key: 'default', the file as given, a variable name, or 'cli'. */
  readonly origins: Readonly<Record<string, string>>;
  readonly origin: 'defaults' | 'file' | 'last-known-good';
  /** Warnings and the last-known-good fallback: log them, never drop them. */
  readonly events: readonly ConfigEvent[];
}

export interface LoadOptions {
  /** Config file (YAML or JSON); undefined/null: embedded defaults (plus environment and CLI). */
  readonly path?: string | null;
  /** A missing file is not an error (defaults are used). Default false: a wrong path is a mistake. */
  readonly optional?: boolean;
  /** Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Applied last; nested ({ inference: { threshold: 0.3 } }) or dotted ({ 'inference.threshold': 0.3 }). */
  readonly cli?: Readonly<Record<string, unknown>>;
  /** Fall back to the last-known-good copy when the file is invalid; stateDir: where it is kept. */
  readonly lastKnownGood?: boolean | { readonly stateDir?: string };
  readonly profilesDir?: string;
  readonly cwd?: string;
  readonly hostname?: string;
  readonly homedir?: string;
}

export const LAST_KNOWN_GOOD_FILE = 'config.last-known-good.json';
const LKG_FORMAT = 'lvunet-edge/last-known-good@1';

interface Layer {
  readonly source: string;
  readonly value: Record<string, unknown>;
  readonly lineOf?: (path: readonly PathSegment[]) => number | undefined;
}

interface Context {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly dctx: DefaultContext;
  readonly profilesDir?: string;
  readonly knownPaths: readonly string[];
}

function makeContext(options: LoadOptions): Context {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const dctx: DefaultContext = { env, cwd, hostname: options.hostname ?? osHostname(), homedir: options.homedir ?? osHomedir() };
  return { env, cwd, dctx, profilesDir: options.profilesDir, knownPaths: allKeyPaths() };
}

function allKeyPaths(schema: Schema<unknown> = configSchema, prefix = ''): string[] {
  if (!(schema instanceof ObjectSchema)) return [];
  const fields = schema.fields as Record<string, Schema<unknown>>;
  return Object.entries(fields).flatMap(([k, s]) => {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    return [p, ...allKeyPaths(s, p)];
  });
}

function checkLayer(value: unknown, source: string, baseDir: string, ctx: Context, issues: ConfigIssue[], lineOf?: Layer['lineOf']): Layer | undefined {
  const checkCtx: CheckContext = { source, baseDir, issues, knownPaths: ctx.knownPaths, lineOf, dctx: ctx.dctx };
  const v = configSchema.check(value, [], checkCtx, true);
  return v === INVALID ? undefined : { source, value: v as Record<string, unknown>, lineOf };
}

/** `{ 'a.b': 1 }` -> `{ a: { b: 1 } }` (only top-level keys are split: option names may contain dots). */
export function expandDottedKeys(obj: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const parts = key.split('.');
    let node = out;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (!isPlainObject(next)) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1];
    node[last] = isPlainObject(value) && isPlainObject(node[last]) ? deepAssign(node[last], value) : value;
  }
  return out;
}

function deepAssign(target: Record<string, unknown>, source: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(source)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepAssign(out[k], v) : v;
  return out;
}

function setPath(path: readonly string[], value: unknown): Record<string, unknown> {
  let out: unknown = value;
  for (let i = path.length - 1; i >= 0; i--) out = { [path[i]]: out };
  return out as Record<string, unknown>;
}

/** Top-level sections, as environment prefixes: LVUNET_MQTT_ etc. */
function envSections(): string[] {
  return Object.entries(configSchema.fields)
    .filter(([, s]) => s instanceof ObjectSchema)
    .map(([k]) => `LVUNET_${k.toUpperCase()}_`);
}

/**
 * One layer per LVUNET_<SECTION>_<KEY> variable, typed by the schema. A variable under a known
 * section prefix that names no key is an error (a typo would otherwise be ignored silently);
 * other LVUNET_* variables (LVUNET_ORT_LIBRARY, LVUNET_DEBUG...) belong to other modules.
 */
function envLayers(ctx: Context, issues: ConfigIssue[]): Layer[] {
  const layers: Layer[] = [];
  const leaves = leafKeys();
  const names = leaves.map((l) => envName(l.path));
  for (const leaf of leaves) {
    const name = envName(leaf.path);
    const text = ctx.env[name];
    if (text === undefined) continue;
    const parsed = leaf.schema.fromEnv(text);
    if (!parsed.ok) {
      issues.push({ source: name, path: leaf.path.join('.'), kind: 'parse', message: `cannot parse ${show(text)}: ${parsed.message}` });
      continue;
    }
    const layer = checkLayer(setPath(leaf.path, parsed.value), name, ctx.cwd, ctx, issues);
    if (layer) layers.push(layer);
  }
  const sections = envSections();
  for (const name of Object.keys(ctx.env).sort()) {
    if (ctx.env[name] === undefined || names.includes(name) || !sections.some((s) => name.startsWith(s))) continue;
    const near = didYouMean(name, names);
    issues.push({
      source: name,
      path: '',
      kind: 'unknown-key',
      message: `is not a configuration variable${near ? ` (did you mean ${near}?)` : ''}`,
    });
  }
  return layers;
}

function mergeLayer(schema: Schema<unknown> | undefined, base: unknown, layer: unknown, path: string, origins: Record<string, string>, source: string): unknown {
  if (schema instanceof ObjectSchema && isPlainObject(layer) && isPlainObject(base)) {
    const fields = schema.fields as Record<string, Schema<unknown>>;
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(layer)) out[k] = mergeLayer(fields[k], base[k], v, path === '' ? k : `${path}.${k}`, origins, source);
    return out;
  }
  // Lists and mappings (providers, camera controls) are replaced whole: merging two provider lists has no sensible meaning.
  origins[path] = source;
  return structuredClone(layer);
}

function originOf(origins: Readonly<Record<string, string>>, path: string): string | undefined {
  let p = path.replace(/\[.*$/, '');
  while (p !== '') {
    if (origins[p] !== undefined) return origins[p];
    p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '';
  }
  return undefined;
}

interface Assembly {
  readonly fileLayer: Layer | undefined;
  readonly file: string | null;
  readonly fileSha256: string | null;
  readonly envLayers: readonly Layer[];
  readonly cliLayer: Layer | undefined;
  readonly origin: LoadedConfig['origin'];
}

function assemble(a: Assembly, ctx: Context): { loaded?: LoadedConfig; issues: ConfigIssue[] } {
  const origins: Record<string, string> = {};
  for (const leaf of leafKeys()) origins[leaf.path.join('.')] = 'default';
  let merged: unknown = configSchema.defaultValue(ctx.dctx);
  const layers = [a.fileLayer, ...a.envLayers, a.cliLayer].filter((l): l is Layer => l !== undefined);
  for (const layer of layers) merged = mergeLayer(configSchema, merged, layer.value, '', origins, layer.source);

  // Cross-field rules run on the merged whole; each issue is charged to the layer that set the key.
  const raw: ConfigIssue[] = [];
  const full = configSchema.check(merged, [], { source: 'config', baseDir: ctx.cwd, issues: raw, dctx: ctx.dctx }, false);
  const issues: ConfigIssue[] = raw.map((i) => charge(i, origins, layers));
  if (full === INVALID) return { issues };
  const config = full;
  const push = (path: string, kind: ConfigIssue['kind'], message: string) => issues.push(charge({ source: 'config', path, kind, message }, origins, layers));

  const tls = config.mqtt.tls;
  if ((tls.cert === null) !== (tls.key === null)) {
    push(tls.cert === null ? 'mqtt.tls.key' : 'mqtt.tls.cert', 'constraint', 'mqtt.tls.cert and mqtt.tls.key must be given together (mutual TLS)');
  }
  const explicit = config.runtime.providers;
  if (explicit !== null) {
    checkProviderOrder(explicit, (i, message) => push(`runtime.providers[${i}]`, 'constraint', message));
    for (const [i, k, message] of placeholderProblems(explicit)) push(`runtime.providers[${i}].options.${k}`, 'format', message);
  }
  const profileSource = originOf(origins, 'runtime.profile') ?? 'default';
  const resolved = resolveProfile(config.runtime.profile, { baseDir: ctx.cwd, profilesDir: ctx.profilesDir, source: profileSource });
  issues.push(...resolved.issues.map((i) => (i.path === 'runtime.profile' ? charge(i, origins, layers) : i)));
  if (issues.length > 0 || resolved.profile === undefined) return { issues };

  const profile = resolved.profile;
  const providersFrom = explicit === null ? 'profile' : 'config';
  const finalConfig: Config = {
    ...config,
    runtime: { ...config.runtime, providers: explicit ?? structuredClone(profile.profile.providers) },
    mqtt: { ...config.mqtt, queue: { ...config.mqtt.queue, dir: config.mqtt.queue.dir ?? join(config.state_dir, 'mqtt-queue') } },
  };
  const events: ConfigEvent[] = [];
  if (providersFrom === 'profile' && profile.profile.expects_precision !== config.model.precision) {
    events.push({
      type: 'config.warning',
      level: 'warn',
      key: 'model.precision',
      message:
        `model.precision is ${config.model.precision} but profile ${profile.profile.name} expects ${profile.profile.expects_precision} models: ` +
        'it will run, but not as the profile was tuned (use the matching model file or another profile)',
    });
  }
  // `model build` names files lvunet.<precision>.onnx: a mismatch is almost always an edit of one key but not the other.
  const named = /\.(fp32|fp16|int8)\.onnx$/i.exec(config.model.path)?.[1]?.toLowerCase();
  if (named !== undefined && named !== config.model.precision) {
    events.push({
      type: 'config.warning',
      level: 'warn',
      key: 'model.precision',
      message: `model.precision is ${config.model.precision} but model.path names a ${named} file (${config.model.path})`,
    });
  }
  return {
    issues,
    loaded: {
      config: finalConfig,
      profile,
      providersFrom,
      file: a.file,
      fileSha256: a.fileSha256,
      fileLayer: (a.fileLayer?.value ?? {}) as ConfigLayer,
      origins,
      origin: a.origin,
      events,
    },
  };
}

function charge(issue: ConfigIssue, origins: Readonly<Record<string, string>>, layers: readonly Layer[]): ConfigIssue {
  const source = originOf(origins, issue.path) ?? issue.source;
  const layer = layers.find((l) => l.source === source);
  const segments = issue.path.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const line = layer?.lineOf?.(segments);
  return { ...issue, source, ...(line ? { line } : {}) };
}

interface FileRead {
  readonly layer?: Layer;
  readonly issues: ConfigIssue[];
  readonly sha256: string | null;
  /** state_dir as written in the file, when it is a string (for finding the last-known-good). */
  readonly rawStateDir?: string;
}

function readConfigFile(file: string, source: string, ctx: Context): FileRead {
  let text: string;
  try {
    text = readConfigText(file);
  } catch (err) {
    return { issues: [{ source, path: '', kind: 'parse', message: `cannot read the config file: ${(err as Error).message}` }], sha256: null };
  }
  const sha256 = createHash('sha256').update(text).digest('hex');
  const doc = parseDocumentText(text, source);
  if (doc.issues.length > 0) {
    const scanned = scanStateDir(text);
    return { issues: doc.issues, sha256, ...(scanned ? { rawStateDir: resolve(dirname(file), scanned) } : {}) };
  }
  // An empty file (or one with only comments) is a valid config: everything at its default.
  const value = doc.value === null || doc.value === undefined ? {} : doc.value;
  const issues: ConfigIssue[] = [];
  const baseDir = dirname(file);
  const layer = checkLayer(value, source, baseDir, ctx, issues, doc.lineOf);
  const rawStateDir = isPlainObject(value) && typeof value.state_dir === 'string' ? resolve(baseDir, value.state_dir) : undefined;
  return { layer, issues, sha256, rawStateDir };
}

/**
 * Best effort for a file that does not even parse: its top-level state_dir line, so the
 * last-known-good kept there can still be found.
 */
function scanStateDir(text: string): string | undefined {
  const yaml = /^state_dir:[ \t]*(["']?)([^"'#\r\n]+?)\1[ \t]*(#.*)?$/m.exec(text);
  if (yaml) return yaml[2];
  return /"state_dir"\s*:\s*"([^"]+)"/.exec(text)?.[1];
}

export interface LastKnownGood {
  readonly format: typeof LKG_FORMAT;
  readonly saved_at: string;
  readonly file: string | null;
  readonly file_sha256: string | null;
  readonly layer: ConfigLayer;
}

export function lastKnownGoodPath(stateDir: string): string {
  return join(stateDir, LAST_KNOWN_GOOD_FILE);
}

/**
 * Records `loaded` (its file layer: environment and CLI are re-applied at each start) as the
 * last-known-good. `run` calls it when the first result of a run started from a config file
 * arrives (model loaded, source delivering, a frame through the whole pipeline). Written
 * atomically (a crash leaves the old copy or the new one), mode 0600: it may hold the broker
 * password. Returns the path written.
 */
export function saveLastKnownGood(stateDir: string, loaded: LoadedConfig): string {
  const path = lastKnownGoodPath(stateDir);
  const record: LastKnownGood = {
    format: LKG_FORMAT,
    saved_at: new Date().toISOString(),
    file: loaded.file,
    file_sha256: loaded.fileSha256,
    layer: loaded.fileLayer,
  };
  writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  return path;
}

function tryLastKnownGood(
  stateDir: string,
  file: string,
  fileSource: string,
  fileIssues: readonly ConfigIssue[],
  rest: Pick<Assembly, 'envLayers' | 'cliLayer'>,
  ctx: Context,
): LoadedConfig {
  const path = lastKnownGoodPath(stateDir);
  const headline = `${fileSource} is invalid and no usable last-known-good config was found in ${stateDir}`;
  if (!existsSync(path)) throw new ConfigError(fileIssues, headline);
  const issues: ConfigIssue[] = [];
  let record: unknown;
  try {
    record = JSON.parse(readConfigText(path));
  } catch (err) {
    issues.push({ source: path, path: '', kind: 'parse', message: `unreadable: ${(err as Error).message}` });
  }
  if (issues.length === 0 && (!isPlainObject(record) || record.format !== LKG_FORMAT || !isPlainObject(record.layer))) {
    issues.push({ source: path, path: '', kind: 'format', message: `not a ${LKG_FORMAT} file` });
  }
  if (issues.length > 0 || !isPlainObject(record)) throw new ConfigError([...fileIssues, ...issues], headline);
  const layer = checkLayer(record.layer, path, dirname(file), ctx, issues);
  const savedAt = typeof record.saved_at === 'string' ? record.saved_at : 'unknown';
  const savedSha = typeof record.file_sha256 === 'string' ? record.file_sha256 : null;
  const result = layer ? assemble({ fileLayer: layer, file, fileSha256: savedSha, origin: 'last-known-good', ...rest }, ctx) : { issues };
  if (!result.loaded) throw new ConfigError([...fileIssues, ...result.issues], headline);
  const event: ConfigEvent = {
    type: 'config.fallback',
    level: 'error',
    file,
    issues: fileIssues,
    lastKnownGood: { path, savedAt, fileSha256: savedSha },
    message:
      `CONFIG REJECTED: ${fileSource} has ${fileIssues.length} problem(s); running the last-known-good config saved ${savedAt} ` +
      `(${path}) instead. Fix the file:\n${fileIssues.map((i) => `  ${formatIssue(i)}`).join('\n')}`,
  };
  return { ...result.loaded, events: [event, ...result.loaded.events] };
}

/** Loads, merges and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const ctx = makeContext(options);
  let fileRead: FileRead | undefined;
  let file: string | null = null;
  const fileSource = options.path ?? '';
  if (options.path) {
    file = resolve(ctx.cwd, options.path);
    if (existsSync(file) || !options.optional) fileRead = readConfigFile(file, options.path, ctx);
    else file = null;
  }
  const envIssues: ConfigIssue[] = [];
  const envLs = envLayers(ctx, envIssues);
  const cliIssues: ConfigIssue[] = [];
  const cliLayer = options.cli ? checkLayer(expandDottedKeys(options.cli), 'cli', ctx.cwd, ctx, cliIssues) : undefined;

  let issues: ConfigIssue[] = [...(fileRead?.issues ?? []), ...envIssues, ...cliIssues];
  if (issues.length === 0) {
    const origin = file === null ? 'defaults' : 'file';
    const result = assemble({ fileLayer: fileRead?.layer, file, fileSha256: fileRead?.sha256 ?? null, envLayers: envLs, cliLayer, origin }, ctx);
    if (result.loaded) return result.loaded;
    issues = result.issues;
  }

  // The last-known-good answers a broken file only; a bad variable or CLI value is the operator's to fix now.
  const fileIsTheProblem = issues.some((i) => i.source === fileSource) && issues.every((i) => i.source === fileSource || i.source === file);
  if (options.lastKnownGood && file !== null && fileIsTheProblem) {
    const lkg = typeof options.lastKnownGood === 'object' ? options.lastKnownGood.stateDir : undefined;
    const envState = envLs.find((l) => l.value.state_dir !== undefined)?.value.state_dir;
    const stateDir =
      lkg ??
      (cliLayer?.value.state_dir as string | undefined) ??
      (envState as string | undefined) ??
      fileRead?.rawStateDir ??
      (configSchema.fields.state_dir.defaultValue(ctx.dctx));
    return tryLastKnownGood(stateDir, file, fileSource, issues, { envLayers: envLs, cliLayer }, ctx);
  }
  throw new ConfigError(issues);
}

/** A copy safe to log or publish: secrets replaced by "***". */
export function redactConfig(config: Config): Config {
  return {
    ...config,
    mqtt: { ...config.mqtt, password: config.mqtt.password === null ? null : '***' },
    ui: { ...config.ui, token: config.ui.token === null ? null : '***' },
  };
}

/**
 * `--set key=value` arguments as a CLI override object; values are typed like environment
 * variables (numbers, booleans, null, YAML flow lists). Unknown keys are kept, so loadConfig
 * reports them with a suggestion.
 */
export function overridesFromAssignments(assignments: readonly string[]): Record<string, unknown> {
  const leaves = new Map(leafKeys().map((l) => [l.path.join('.'), l.schema]));
  const out: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new ConfigError([{ source: 'cli', path: '', kind: 'parse', message: `${JSON.stringify(a)} is not key=value` }]);
    const key = a.slice(0, eq).trim();
    const text = a.slice(eq + 1);
    const schema = leaves.get(key);
    const parsed = schema ? schema.fromEnv(text) : { ok: true as const, value: text };
    if (!parsed.ok) throw new ConfigError([{ source: 'cli', path: key, kind: 'parse', message: `cannot parse ${show(text)}: ${parsed.message}` }]);
    out[key] = parsed.value;
  }
  return out;
}
