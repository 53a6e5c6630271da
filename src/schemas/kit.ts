/**
 * How every payload of lvunet-edge is defined: once, as a TypeBox schema. From that one value come
 *   - the TypeScript type (`Static<typeof X>`), so code and schema cannot drift;
 *   - the runtime validator (`compile(X)`: TypeBox's TypeCompiler, with per-field errors below);
 *   - the published JSON Schema (the schema value *is* draft-07 JSON Schema; scripts/write-schemas.mjs
 *     writes it to docs/schemas/ for fleet consumers, who validate with any JSON Schema library).
 * Why TypeBox rather than zod/io-ts/ajv+json-schema-to-ts/codegen: its schema objects are plain JSON
 * Schema (no conversion step that could lose a constraint), it infers the TS type without a codegen
 * step, its compiled checks are fast enough for every result frame, and it is one small dependency
 * with no transitive ones.
 *
 * Error messages keep the form the fleet has always seen, one per field:
 * `latencyMs.inference: expected a finite number >= 0, got "fast"`.
 */
import { Kind, Type, type Static, type TSchema, type TObject, type TProperties, type ObjectOptions } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError, type ValueErrorIterator } from '@sinclair/typebox/errors';

/** Static<> with every property and array readonly, for messages that are built once and passed on. */
export type Immutable<T> = T extends object ? { readonly [K in keyof T]: Immutable<T[K]> } : T;

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };

// ---------------------------------------------------------------------------------------------
// Building blocks. Patterns are strings (JSON Schema's `pattern`, ECMA-262) so a consumer's
// validator applies exactly the device's rule; no `format` keyword, which validators treat unevenly.
// ---------------------------------------------------------------------------------------------

export const ISO_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
export const SHA256_PATTERN = '^[0-9a-f]{64}$';
export const HTTP_URL_PATTERN = '^https?://\\S+$';

/** What a pattern means, for error messages ("expected an ISO 8601 time"). */
const PATTERN_NAMES = new Map<string, string>([
  [ISO_TIME_PATTERN, 'an ISO 8601 time'],
  [SHA256_PATTERN, '64 lowercase hex digits'],
  [HTTP_URL_PATTERN, 'an http(s) URL'],
]);

/** A non-empty string of at most `max` characters. */
export const Str = (max: number, options: { description?: string; pattern?: string } = {}) =>
  Type.String({ minLength: 1, maxLength: max, ...options });
export const IsoTime = (description?: string) => Type.String({ pattern: ISO_TIME_PATTERN, ...(description ? { description } : {}) });
export const Sha256 = (description?: string) => Type.String({ pattern: SHA256_PATTERN, ...(description ? { description } : {}) });
export const Num = (options: { minimum?: number; exclusiveMinimum?: number; maximum?: number; description?: string } = {}) => Type.Number(options);
export const Int = (options: { minimum?: number; maximum?: number; description?: string } = {}) => Type.Integer(options);
/** A count: an integer >= 0. */
export const Count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
export const OneOf = <T extends string>(values: readonly T[], description?: string) =>
  Type.Union(values.map((v) => Type.Literal(v)), description ? { description } : {});

/** An object that rejects fields it does not define (usually typos of optional ones). */
export function Closed<P extends TProperties>(properties: P, options: ObjectOptions = {}): TObject<P> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} chars` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

function range(s: TSchema): string {
  const parts: string[] = [];
  if (typeof s.minimum === 'number') parts.push(`>= ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') parts.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number') parts.push(`<= ${s.maximum}`);
  if (typeof s.exclusiveMaximum === 'number') parts.push(`< ${s.exclusiveMaximum}`);
  return parts.length ? ` ${parts.join(' and ')}` : '';
}

/** What a schema accepts, in words: "a finite integer >= 0", "one of info|warning", "an ISO 8601 time". */
export function describeSchema(s: TSchema): string {
  switch (s[Kind] as string) {
    case 'Literal':
      return JSON.stringify(s.const);
    case 'Union': {
      const variants = s.anyOf as TSchema[];
      if (variants.every((v) => v[Kind] === 'Literal' && typeof v.const === 'string')) {
        return `one of ${variants.map((v) => v.const as string).join('|')}`;
      }
      return [...new Set(variants.map(describeSchema))].join(' or ');
    }
    case 'Number':
      return `a finite number${range(s)}`;
    case 'Integer':
      return `a finite integer${range(s)}`;
    case 'String': {
      if (typeof s.pattern === 'string') return PATTERN_NAMES.get(s.pattern) ?? `a string matching /${s.pattern}/`;
      const max = typeof s.maxLength === 'number' ? ` of at most ${s.maxLength} chars` : '';
      return `a ${s.minLength === 1 ? 'non-empty ' : ''}string${max}`;
    }
    case 'Boolean':
      return 'a boolean';
    case 'Null':
      return 'null';
    case 'Array':
      return `an array${s.items && !Array.isArray(s.items) ? ` of ${plural(describeSchema(s.items as TSchema))}` : ''}`;
    case 'Tuple':
      return `[${((s.items ?? []) as TSchema[]).map(describeSchema).join(', ')}]`;
    case 'Object':
    case 'Record':
      return 'an object';
    default:
      return s.description ?? 'a valid value';
  }
}

function plural(what: string): string {
  return what.replace(/^an? /, '').replace(/^(finite (?:number|integer))/, '$1s').replace(/^(non-empty )?string/, '$1strings');
}

/** JSON pointer `/components/0/bbox/height` -> `components[0].bbox.height`; the root is `(root)`. */
function fieldName(pointer: string): string {
  if (pointer === '') return '(root)';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function all(it: ValueErrorIterator): ValueError[] {
  return [...it];
}

/**
 * The errors of a failed union: for objects tagged by a literal field (`type`, `ok`), the variant the
 * tag names, else the variant closest to passing; for scalars, one message listing what is accepted.
 */
function unionErrors(e: ValueError): ValueError[] {
  const variants = e.schema.anyOf as TSchema[];
  const value = e.value;
  const isObj = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObj || !variants.every((v) => v[Kind] === 'Object')) return [e];
  const literal = (v: TSchema, k: string): unknown => {
    const p = (v.properties as Record<string, TSchema>)[k];
    return p?.[Kind] === 'Literal' ? p.const : undefined;
  };
  // A tag is a field every variant fixes to a different literal (`type`, `ok`), not one they share (`schema`).
  const tag = Object.keys((variants[0].properties ?? {}) as object).find((k) => {
    const values = variants.map((v) => literal(v, k));
    return values.every((x) => x !== undefined) && new Set(values).size === variants.length;
  });
  const lists = e.errors.map(all);
  if (tag !== undefined) {
    const got = (value as Record<string, unknown>)[tag];
    const i = variants.findIndex((v) => (v.properties as Record<string, TSchema>)[tag].const === got);
    if (i >= 0) return lists[i];
    const tags = variants.map((v) => String((v.properties as Record<string, TSchema>)[tag].const));
    const path = `${e.path}/${tag}`;
    return [{ ...e, type: ValueErrorType.Literal, path, value: got, schema: Type.Union(tags.map((t) => Type.Literal(t))), errors: [] }];
  }
  const fewest = Math.min(...lists.map((l) => l.length));
  const closest = lists.filter((l) => l.length === fewest);
  // Variants that each fail on the same one field (COCO counts: numbers or a string) are one message.
  if (fewest === 1 && closest.length > 1 && closest.every((l) => l[0].path === closest[0][0].path && l[0].type !== ValueErrorType.ObjectAdditionalProperties)) {
    const alternatives = Type.Union(closest.map((l) => l[0].schema));
    return [{ ...closest[0][0], type: ValueErrorType.Union, schema: alternatives, errors: [] }];
  }
  return closest[0];
}

function messages(errors: Iterable<ValueError>, out: string[], seen: Set<string>): void {
  for (const e of errors) {
    if (e.type === ValueErrorType.Union) {
      const picked = unionErrors(e);
      if (picked.length !== 1 || picked[0] !== e) {
        messages(picked, out, seen);
        continue;
      }
    }
    const name = fieldName(e.path);
    if (seen.has(name)) continue;
    seen.add(name);
    if (e.type === ValueErrorType.ObjectAdditionalProperties) out.push(`${name}: unknown field`);
    else out.push(`${name}: expected ${describeSchema(e.schema)}, got ${describeValue(e.value)}`);
  }
}

/**
 * JSON Schema's "exactly one of these fields" (`oneOf: [{required: [a]}, {required: [b]}]` on an
 * object), which TypeBox's checker does not evaluate; checked here from the same schema keyword.
 */
function exactlyOne(schema: TSchema, value: unknown, out: string[]): void {
  const groups = schema.oneOf as { required: string[] }[] | undefined;
  if (!Array.isArray(groups) || typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const keys = groups.map((g) => g.required[0]);
  const given = keys.filter((k) => (value as Record<string, unknown>)[k] !== undefined);
  if (given.length !== 1) {
    const list = `${keys.slice(0, -1).join(', ')} or ${keys[keys.length - 1]}`;
    out.push(`${keys.join('|')}: exactly one of ${list} is required${given.length > 1 ? ` (got ${given.join(', ')})` : ''}`);
  }
}

/** `oneOf` groups for exactlyOne(), written as JSON Schema so consumers enforce the same rule. */
export function exactlyOneOf(...fields: string[]): { oneOf: { required: string[]; properties: Record<string, object> }[] } {
  // `properties: {f: {}}` repeats the field's presence (not its type) so that Ajv's strictRequired sees it defined.
  return { oneOf: fields.map((f) => ({ required: [f], properties: { [f]: {} } })) };
}

// ---------------------------------------------------------------------------------------------
// Compiled validators
// ---------------------------------------------------------------------------------------------

export interface Validator<T extends TSchema> {
  readonly schema: T;
  /** True when the value matches; a type guard. */
  check(value: unknown): value is Static<T>;
  /** Every problem, one per field (at most one message per field). */
  errors(value: unknown): string[];
  validate(value: unknown): Validation<Static<T>>;
}

export function compile<T extends TSchema>(schema: T): Validator<T> {
  // Compiled lazily: a module that only needs the types or the schema value pays nothing.
  let compiled: TypeCheck<T> | undefined;
  const checker = (): TypeCheck<T> => (compiled ??= TypeCompiler.Compile(schema));
  const errors = (value: unknown): string[] => {
    const out: string[] = [];
    if (!checker().Check(value)) messages(checker().Errors(value), out, new Set());
    exactlyOne(schema, value, out);
    return out;
  };
  return {
    schema,
    check: (value: unknown): value is Static<T> => checker().Check(value) && (schema.oneOf === undefined || errors(value).length === 0),
    errors,
    validate(value: unknown): Validation<Static<T>> {
      const found = errors(value);
      return found.length === 0 ? { ok: true, value: value as Static<T> } : { ok: false, errors: found };
    },
  };
}
