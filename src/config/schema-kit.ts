/**
 * A small schema kit: each node validates one value, knows its default, parses its environment
 * variable text and describes itself for the documentation table. The configuration's TypeScript
 * types are inferred from the nodes (`Infer<typeof node>`), so the schema and the types cannot
 * drift apart.
 *
 * Validation never throws: every problem is pushed onto `ctx.issues` so that a config file with
 * five mistakes is reported in one go, not one mistake per restart.
 */
import { isAbsolute, resolve } from 'node:path';

import { parse as parseYaml } from 'yaml';

export type IssueKind = 'parse' | 'type' | 'range' | 'enum' | 'unknown-key' | 'format' | 'missing' | 'constraint';

export interface ConfigIssue {
  /** The file path as given, the environment variable's name, `cli` or `config` (merged result). */
  readonly source: string;
  /** Dotted key path, e.g. `inference.threshold` or `runtime.providers[0].name`; '' for the whole document. */
  readonly path: string;
  readonly kind: IssueKind;
  readonly message: string;
  /** 1-based line in the file, where known. */
  readonly line?: number;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === '' ? '' : `${issue.path}: `;
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`;
  return `${issue.source}: ${where}${issue.message}${line}`;
}

export interface CheckContext {
  readonly source: string;
  /** Relative paths are resolved against this (the config file's folder, or the working directory). */
  readonly baseDir: string;
  readonly issues: ConfigIssue[];
  /** Every key path of the schema, for "did you mean" across sections. */
  readonly knownPaths?: readonly string[];
  readonly lineOf?: (path: readonly PathSegment[]) => number | undefined;
  /** For defaults of fields missing inside list items. */
  readonly dctx?: DefaultContext;
}

export interface DefaultContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hostname: string;
  readonly homedir: string;
  readonly cwd: string;
}

/** Result of turning an environment variable's text into a raw value for `check`. */
export type EnvParse = { ok: true; value: unknown } | { ok: false; message: string };

/** Returned by `check` when the value was rejected (the issue is already recorded). */
export const INVALID: unique symbol = Symbol('invalid');
export type Checked<T> = T | typeof INVALID;

export function report(ctx: CheckContext, path: readonly PathSegment[], kind: IssueKind, message: string): typeof INVALID {
  const line = ctx.lineOf?.(path);
  ctx.issues.push({ source: ctx.source, path: formatPath(path), kind, message, ...(line === undefined ? {} : { line }) });
  return INVALID;
}

/** A value as it appears in messages: strings quoted, containers named. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  return String(value);
}

export abstract class Schema<T> {
  /** Phantom field carrying T for `Infer`. */
  declare readonly _type: T;
  constructor(readonly doc: string) {}
  /** Type description for the keys table, e.g. `number in [0, 1]`. */
  abstract describe(): string;
  abstract defaultValue(dctx: DefaultContext): T;
  /** `partial`: objects accept missing keys and return only the keys present (a layer). */
  abstract check(value: unknown, path: readonly PathSegment[], ctx: CheckContext, partial: boolean): Checked<T>;
  fromEnv(text: string): EnvParse {
    return { ok: true, value: text };
  }
  /** Default shown in the keys table. */
  describeDefault(dctx: DefaultContext): string {
    return JSON.stringify(this.defaultValue(dctx));
  }
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Default<T> = T | ((dctx: DefaultContext) => T);
function resolveDefault<T>(d: Default<T>, dctx: DefaultContext): T {
  return typeof d === 'function' ? (d as (dctx: DefaultContext) => T)(dctx) : d;
}

const NUMBER_TEXT = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

export interface NumberOptions {
  default: number;
  min?: number;
  max?: number;
  /** Excludes `min` itself (e.g. intervals that must be > 0). */
  minExclusive?: boolean;
  integer?: boolean;
}

export class NumberSchema extends Schema<number> {
  constructor(
    doc: string,
    readonly opts: NumberOptions,
  ) {
    super(doc);
  }
  describe(): string {
    const { min, max, minExclusive, integer } = this.opts;
    const base = integer ? 'integer' : 'number';
    if (min !== undefined && max !== undefined) return `${base} in ${minExclusive ? '(' : '['}${min}, ${max}]`;
    if (min !== undefined) return `${base} ${minExclusive ? '>' : '>='} ${min}`;
    if (max !== undefined) return `${base} <= ${max}`;
    return base;
  }
  defaultValue(): number {
    return this.opts.default;
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<number> {
    const { min, max, minExclusive, integer } = this.opts;
    if (typeof value !== 'number' || Number.isNaN(value)) return report(ctx, path, 'type', `${show(value)} is not a number`);
    if (!Number.isFinite(value)) return report(ctx, path, 'range', `${show(value)} is not a finite number`);
    if (integer && !Number.isInteger(value)) return report(ctx, path, 'type', `${show(value)} is not an integer`);
    const tooLow = min !== undefined && (minExclusive ? value <= min : value < min);
    const tooHigh = max !== undefined && value > max;
    if (tooLow || tooHigh) {
      if (min !== undefined && max !== undefined) {
        return report(ctx, path, 'range', `${value} is not in ${minExclusive ? '(' : '['}${min}, ${max}]`);
      }
      if (tooLow) return report(ctx, path, 'range', `${value} is not ${minExclusive ? '>' : '>='} ${min}`);
      return report(ctx, path, 'range', `${value} is not <= ${max}`);
    }
    return value;
  }
  override fromEnv(text: string): EnvParse {
    const t = text.trim();
    return { ok: true, value: NUMBER_TEXT.test(t) ? Number(t) : text };
  }
}

export class BooleanSchema extends Schema<boolean> {
  constructor(
    doc: string,
    readonly defaultBool: boolean,
  ) {
    super(doc);
  }
  describe(): string {
    return 'boolean';
  }
  defaultValue(): boolean {
    return this.defaultBool;
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<boolean> {
    if (typeof value !== 'boolean') return report(ctx, path, 'type', `${show(value)} is not a boolean (true or false)`);
    return value;
  }
  override fromEnv(text: string): EnvParse {
    const t = text.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(t)) return { ok: true, value: true };
    if (['false', '0', 'no', 'off'].includes(t)) return { ok: true, value: false };
    return { ok: true, value: text };
  }
}

export interface StringOptions {
  default: Default<string>;
  /** Resolve relative to the layer's base folder (file: the config file's folder). */
  path?: boolean;
  /** Returns a message when the value is not acceptable. */
  validate?: (value: string) => string | undefined;
  /** Rewrites a valid value (e.g. resolves the path inside `folder:PATH`). */
  normalize?: (value: string, baseDir: string) => string;
  format?: string;
  /** How the keys table shows a computed default. */
  defaultDoc?: string;
}

export class StringSchema extends Schema<string> {
  constructor(
    doc: string,
    readonly opts: StringOptions,
  ) {
    super(doc);
  }
  describe(): string {
    return this.opts.format ?? (this.opts.path ? 'path' : 'string');
  }
  defaultValue(dctx: DefaultContext): string {
    return resolveDefault(this.opts.default, dctx);
  }
  override describeDefault(dctx: DefaultContext): string {
    return this.opts.defaultDoc ?? super.describeDefault(dctx);
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<string> {
    if (typeof value !== 'string') return report(ctx, path, 'type', `${show(value)} is not a string`);
    if (this.opts.path && value === '') return report(ctx, path, 'format', 'an empty path is not allowed');
    const problem = this.opts.validate?.(value);
    if (problem !== undefined) return report(ctx, path, 'format', `${show(value)} ${problem}`);
    if (this.opts.normalize) return this.opts.normalize(value, ctx.baseDir);
    if (this.opts.path) return isAbsolute(value) ? value : resolve(ctx.baseDir, value);
    return value;
  }
}

export class EnumSchema<V extends string> extends Schema<V> {
  constructor(
    doc: string,
    readonly values: readonly V[],
    readonly defaultEnum: V,
  ) {
    super(doc);
  }
  describe(): string {
    return this.values.join(' | ');
  }
  defaultValue(): V {
    return this.defaultEnum;
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<V> {
    if (typeof value === 'string' && (this.values as readonly string[]).includes(value)) return value as V;
    const near = typeof value === 'string' ? didYouMean(value, this.values) : undefined;
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    return report(ctx, path, 'enum', `${show(value)} is not one of ${this.values.join(', ')}${hint}`);
  }
}

export class NullableSchema<T> extends Schema<T | null> {
  constructor(
    doc: string,
    readonly inner: Schema<T>,
    readonly defaultNullable: Default<T | null> = null,
  ) {
    super(doc);
  }
  describe(): string {
    return `${this.inner.describe()} | null`;
  }
  defaultValue(dctx: DefaultContext): T | null {
    return resolveDefault(this.defaultNullable, dctx);
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext, partial: boolean): Checked<T | null> {
    if (value === null) return null;
    return this.inner.check(value, path, ctx, partial);
  }
  override fromEnv(text: string): EnvParse {
    const t = text.trim();
    if (t === '' || t === 'null') return { ok: true, value: null };
    return this.inner.fromEnv(text);
  }
}

/** Lists and mappings in environment variables and --set values: YAML flow syntax (JSON is a subset). */
function parseFlow(text: string): EnvParse {
  try {
    return { ok: true, value: parseYaml(text) as unknown };
  } catch (err) {
    return { ok: false, message: (err as Error).message.split('\n')[0] };
  }
}

export class ArraySchema<T> extends Schema<T[]> {
  constructor(
    doc: string,
    readonly item: Schema<T>,
    readonly defaultArray: Default<T[]>,
    readonly opts: { minItems?: number } = {},
  ) {
    super(doc);
  }
  describe(): string {
    return `list of ${this.item.describe()}`;
  }
  defaultValue(dctx: DefaultContext): T[] {
    return resolveDefault(this.defaultArray, dctx);
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<T[]> {
    if (!Array.isArray(value)) return report(ctx, path, 'type', `${show(value)} is not a list`);
    if (this.opts.minItems !== undefined && value.length < this.opts.minItems) {
      return report(ctx, path, 'range', `needs at least ${this.opts.minItems} item(s), got ${value.length}`);
    }
    const out: T[] = [];
    let bad = false;
    value.forEach((v, i) => {
      const r = this.item.check(v, [...path, i], ctx, false);
      if (r === INVALID) bad = true;
      else out.push(r);
    });
    return bad ? INVALID : out;
  }
  override fromEnv(text: string): EnvParse {
    return parseFlow(text);
  }
}

export class RecordSchema<T> extends Schema<Record<string, T>> {
  constructor(
    doc: string,
    readonly value: Schema<T>,
    readonly keyPattern: RegExp,
    readonly keyFormat: string,
  ) {
    super(doc);
  }
  describe(): string {
    return `mapping of ${this.value.describe()}`;
  }
  defaultValue(): Record<string, T> {
    return {};
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<Record<string, T>> {
    if (!isPlainObject(value)) return report(ctx, path, 'type', `${show(value)} is not a mapping`);
    const out: Record<string, T> = {};
    let bad = false;
    for (const [k, v] of Object.entries(value)) {
      if (!this.keyPattern.test(k)) {
        report(ctx, [...path, k], 'format', `key ${JSON.stringify(k)} is not ${this.keyFormat}`);
        bad = true;
        continue;
      }
      const r = this.value.check(v, [...path, k], ctx, false);
      if (r === INVALID) bad = true;
      else out[k] = r;
    }
    return bad ? INVALID : out;
  }
  override fromEnv(text: string): EnvParse {
    return parseFlow(text);
  }
}

type ScalarKind = 'string' | 'number' | 'boolean';
type ScalarOf<K extends ScalarKind> = K extends 'string' ? string : K extends 'number' ? number : boolean;

/** A value that may be any of a few scalar types (provider option values, camera controls). */
export class ScalarSchema<K extends ScalarKind> extends Schema<ScalarOf<K>> {
  constructor(
    doc: string,
    readonly kinds: readonly K[],
    readonly opts: { integer?: boolean } = {},
  ) {
    super(doc);
  }
  describe(): string {
    return this.kinds.map((k) => (k === 'number' && this.opts.integer ? 'integer' : k)).join(' | ');
  }
  defaultValue(): ScalarOf<K> {
    throw new Error('ScalarSchema has no default');
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext): Checked<ScalarOf<K>> {
    const t = typeof value;
    if ((this.kinds as readonly string[]).includes(t) && (t !== 'number' || Number.isFinite(value))) {
      if (t === 'number' && this.opts.integer && !Number.isInteger(value)) {
        return report(ctx, path, 'type', `${show(value)} is not an integer`);
      }
      return value as ScalarOf<K>;
    }
    return report(ctx, path, 'type', `${show(value)} is not ${this.describe().replace(/ \| /g, ' or ')}`);
  }
}

/** One field of an object: required fields have no default and must be present. */
export interface ObjectOptions<F> {
  required?: readonly (keyof F & string)[];
  /** Type shown in the keys table (default "mapping"). */
  typeName?: string;
  /** Cross-field rule run on a complete (non-partial) object. Returns [relative key, message] pairs. */
  refine?: (value: { [K in keyof F]: Infer<F[K]> }) => [string, string][];
}

export type Fields = Record<string, Schema<unknown>>;
export type InferFields<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

export class ObjectSchema<F extends Fields> extends Schema<InferFields<F>> {
  constructor(
    doc: string,
    readonly fields: F,
    readonly opts: ObjectOptions<F> = {},
  ) {
    super(doc);
  }
  describe(): string {
    return this.opts.typeName ?? 'mapping';
  }
  defaultValue(dctx: DefaultContext): InferFields<F> {
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(this.fields)) {
      if (this.opts.required?.includes(k)) continue;
      out[k] = s.defaultValue(dctx);
    }
    return out as InferFields<F>;
  }
  check(value: unknown, path: readonly PathSegment[], ctx: CheckContext, partial: boolean): Checked<InferFields<F>> {
    if (!isPlainObject(value)) return report(ctx, path, 'type', `${show(value)} is not a mapping`);
    const out: Record<string, unknown> = {};
    let bad = false;
    const names = Object.keys(this.fields);
    for (const [k, v] of Object.entries(value)) {
      const field = Object.prototype.hasOwnProperty.call(this.fields, k) ? this.fields[k] : undefined;
      if (field === undefined) {
        report(ctx, [...path, k], 'unknown-key', `unknown key${suggestion(k, names, path, ctx.knownPaths)}`);
        bad = true;
        continue;
      }
      const r = field.check(v, [...path, k], ctx, partial);
      if (r === INVALID) bad = true;
      else out[k] = r;
    }
    for (const k of this.opts.required ?? []) {
      if (!(k in value)) {
        report(ctx, [...path, k], 'missing', 'is required');
        bad = true;
      }
    }
    if (bad) return INVALID;
    if (!partial) {
      for (const [k, s] of Object.entries(this.fields)) {
        if (!(k in out) && !this.opts.required?.includes(k)) {
          out[k] = s.defaultValue(ctx.dctx ?? { env: {}, hostname: '', homedir: '', cwd: ctx.baseDir });
        }
      }
      const full = out as InferFields<F>;
      for (const [key, message] of this.opts.refine?.(full) ?? []) {
        report(ctx, key === '' ? path : [...path, key], 'constraint', message);
        bad = true;
      }
      if (bad) return INVALID;
    }
    return out as InferFields<F>;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate, if it is close enough to be a plausible typo (case differences count as close). */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0.5 : levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // Short words are a distance of 2 from too many others (fp64 vs fp32) for a suggestion to help.
  const limit = word.length <= 4 ? 1 : Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

function suggestion(key: string, siblings: readonly string[], path: readonly PathSegment[], known?: readonly string[]): string {
  const near = didYouMean(key, siblings);
  if (near !== undefined) return ` (did you mean "${near}"?)`;
  // A key put in the wrong section (e.g. `inference.rle`) is as common as a misspelling.
  const here = formatPath(path);
  const elsewhere = (known ?? []).filter((p) => p.split('.').pop() === key && p !== (here === '' ? key : `${here}.${key}`));
  if (elsewhere.length > 0) return ` (did you mean "${elsewhere[0]}"?)`;
  const keys = siblings.length > 0 ? `; known keys here: ${siblings.join(', ')}` : '';
  return keys;
}
