/**
 * Versioned JSON payloads of the fleet topics, their TypeScript types and runtime validators.
 * A validator returns every problem it finds, each naming the field (`latency_ms.total: ...`), so a
 * command reply or a consumer's log says exactly what to fix. A change to a field's meaning needs a
 * new `@version`; adding an optional field does not.
 */

import { RESULT_SCHEMA, type ResultV1 } from '../runtime/sinks/result.js';

// One result schema for jsonl files, stdout and MQTT: the pipeline's (runtime/sinks/result.ts).
export { RESULT_SCHEMA };
export const TELEMETRY_SCHEMA = 'lvunet-edge/telemetry@1';
export const EVENT_SCHEMA = 'lvunet-edge/event@1';
export const STATUS_SCHEMA = 'lvunet-edge/status@1';
export const REPLY_SCHEMA = 'lvunet-edge/reply@1';

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export interface ModelRef {
  sha256: string;
  precision: string;
}

/**
 * A result on `<prefix>/<device>/result`: the pipeline's result@1 object plus the device and a
 * per-device seq, strictly increasing and persisted across restarts. Delivery is at-least-once:
 * consumers deduplicate on (device, seq). `frame.seq` is the source's frame counter, which restarts
 * with the worker; `seq` does not.
 */
export type ResultMessage = ResultV1 & { device: string; seq: number };

/** What the pipeline hands to FleetLink; the link adds device and seq. */
export type ResultBody = ResultV1;

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface TelemetryMessage {
  schema: typeof TELEMETRY_SCHEMA;
  device: string;
  time: string;
  fps: number;
  latency_ms: Percentiles;
  /** Frames dropped since start. */
  drops: number;
  provider: string;
  /** Process CPU use over the last interval, 100 = one core. */
  cpu_pct: number;
  memory_rss_bytes: number;
  /** null where the board exposes no thermal zone. */
  temperature_c: number | null;
  uptime_s: number;
  model: ModelRef | null;
  /**
   * Messages waiting in the offline queue and dropped from it since it was created (bounds, drop
   * policy, failed disk writes); `damaged`: queued records found unreadable on disk (bit rot, torn
   * writes) since this process started; `refused`: publishes the broker answered with a failure
   * reason code (kept queued and retried) since this process started.
   */
  queue?: { pending: number; dropped: number; damaged?: number; refused?: number };
}

export const EVENT_TYPES = ['model-changed', 'fault', 'restart', 'fallback', 'config', 'drop', 'command', 'other'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const SEVERITIES = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface EventMessage {
  schema: typeof EVENT_SCHEMA;
  device: string;
  time: string;
  type: EventType;
  severity: Severity;
  message: string;
  details?: Record<string, unknown>;
}

export interface StatusMessage {
  schema: typeof STATUS_SCHEMA;
  device: string;
  state: 'online' | 'offline';
  /** When the state was announced; the last will carries the time it was registered at connect. */
  time: string;
  versions: Record<string, string>;
}

export interface SetThresholdCommand {
  id: string;
  value: number;
}
export interface SnapshotCommand {
  id: string;
}
/**
 * Exactly one of `path` (a bundle directory on the device), `url` (an http(s) bundle base URL) or
 * `rollback: true` (make the previous installed bundle current again).
 */
export interface ReloadModelCommand {
  id: string;
  path?: string;
  url?: string;
  rollback?: true;
  /** Expected sha256 of the model file that will serve, checked before it is swapped in. */
  sha256?: string;
  /** Expected precision of that model file (fp32, fp16, int8). */
  precision?: string;
}
export interface StatusCommand {
  id: string;
}

export interface CommandMap {
  'set-threshold': SetThresholdCommand;
  snapshot: SnapshotCommand;
  'reload-model': ReloadModelCommand;
  status: StatusCommand;
}
export type CommandName = keyof CommandMap;
export const COMMAND_NAMES: readonly CommandName[] = ['set-threshold', 'snapshot', 'reload-model', 'status'];

export interface CommandReply {
  schema: typeof REPLY_SCHEMA;
  /** The request id, or null when the request was too broken to carry one. */
  id: string | null;
  ok: boolean;
  error?: string;
  result?: unknown;
}

// ---------------------------------------------------------------------------------------------
// Validation primitives
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

const PRECISIONS = ['fp32', 'fp16', 'int8'] as const;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const SHA256 = /^[0-9a-f]{64}$/;
const MAX_ID_LENGTH = 128;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} chars` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

/** Collects errors under a field path. */
class Checker {
  constructor(
    private readonly path: string = '',
    readonly errors: string[] = [],
  ) {}

  /** A checker for a nested field; it shares this one's list, so one result carries every problem. */
  at(field: string): Checker {
    return new Checker(this.path === '' ? field : `${this.path}.${field}`, this.errors);
  }

  fail(field: string, what: string, got: unknown): void {
    const name = this.path === '' ? field : `${this.path}.${field}`;
    this.errors.push(`${name}: expected ${what}, got ${describe(got)}`);
  }

  object(o: Obj, field: string, optional = false): Obj | undefined {
    const v = o[field];
    if (v === undefined && optional) return undefined;
    if (!isObject(v)) {
      this.fail(field, 'an object', v);
      return undefined;
    }
    return v;
  }

  string(o: Obj, field: string, opts: { optional?: boolean; max?: number; pattern?: RegExp; what?: string } = {}): void {
    const v = o[field];
    if (v === undefined && opts.optional) return;
    const max = opts.max ?? 4096;
    if (typeof v !== 'string' || v.length === 0 || v.length > max || (opts.pattern && !opts.pattern.test(v))) {
      this.fail(field, opts.what ?? `a non-empty string of at most ${max} chars`, v);
    }
  }

  number(o: Obj, field: string, opts: { optional?: boolean; min?: number; max?: number; integer?: boolean } = {}): void {
    const v = o[field];
    if (v === undefined && opts.optional) return;
    const min = opts.min ?? -Infinity;
    const max = opts.max ?? Infinity;
    const ok =
      typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!opts.integer || Number.isSafeInteger(v));
    if (!ok) {
      const range = [Number.isFinite(min) ? `>= ${min}` : '', Number.isFinite(max) ? `<= ${max}` : ''].filter(Boolean);
      this.fail(field, `a finite ${opts.integer ? 'integer' : 'number'}${range.length ? ` ${range.join(' and ')}` : ''}`, v);
    }
  }

  oneOf<T extends string>(o: Obj, field: string, values: readonly T[], optional = false): void {
    const v = o[field];
    if (v === undefined && optional) return;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.fail(field, `one of ${values.join('|')}`, v);
    }
  }

  literal(o: Obj, field: string, value: string): void {
    if (o[field] !== value) this.fail(field, JSON.stringify(value), o[field]);
  }

  numberTuple(o: Obj, field: string, length: number): void {
    const v = o[field];
    if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(field, `an array of ${length} finite numbers`, v);
    }
  }

  /** Rejects fields the schema does not know, which are usually typos of optional ones. */
  noExtra(o: Obj, allowed: readonly string[]): void {
    for (const key of Object.keys(o)) {
      if (!allowed.includes(key)) this.errors.push(`${this.path === '' ? key : `${this.path}.${key}`}: unknown field`);
    }
  }
}

function finish<T>(c: Checker, value: unknown): Validation<T> {
  return c.errors.length === 0 ? { ok: true, value: value as T } : { ok: false, errors: c.errors };
}

function root(value: unknown, c: Checker): Obj | undefined {
  if (!isObject(value)) {
    c.errors.push(`(root): expected a JSON object, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Payload validators
// ---------------------------------------------------------------------------------------------

function checkModel(c: Checker, o: Obj, field: string, nullable = false): void {
  if (nullable && o[field] === null) return;
  const m = c.object(o, field);
  if (!m) return;
  const mc = c.at(field);
  mc.string(m, 'sha256', { pattern: SHA256, what: '64 lowercase hex digits' });
  mc.string(m, 'precision', { max: 32 });
}

const LATENCY_STAGES = ['capture', 'preprocess', 'queue', 'inference', 'postprocess', 'total'] as const;

function checkRle(c: Checker, o: Obj): void {
  const rle = c.object(o, 'rle', true);
  if (!rle) return;
  const rc = c.at('rle');
  // COCO: size is [height, width]; counts column-major (src/runtime/postprocess/rle.ts).
  const size = rle.size;
  if (!(Array.isArray(size) && size.length === 2 && size.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 1))) {
    rc.fail('size', '[height, width], two positive integers', size);
  }
  const counts = rle.counts;
  if (typeof counts !== 'string' && !(Array.isArray(counts) && counts.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0))) {
    rc.fail('counts', 'an array of non-negative integers or a COCO string', counts);
  }
  rc.noExtra(rle, ['size', 'counts']);
}

/** Checks a result message: the pipeline's result@1 fields plus `device` and `seq`. */
export function validateResult(value: unknown): Validation<ResultMessage> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.literal(o, 'schema', RESULT_SCHEMA);
  c.string(o, 'device', { max: 128 });
  c.number(o, 'seq', { min: 0, integer: true });
  const frame = c.object(o, 'frame');
  if (frame) {
    const fc = c.at('frame');
    fc.string(frame, 'id', { max: 256 });
    fc.number(frame, 'seq', { min: 0, integer: true });
    fc.string(frame, 'stem', { optional: true, max: 256 });
    fc.number(frame, 'width', { min: 1, integer: true });
    fc.number(frame, 'height', { min: 1, integer: true });
    fc.string(frame, 'format', { max: 32 });
    fc.noExtra(frame, ['id', 'seq', 'stem', 'width', 'height', 'format']);
  }
  checkModel(c, o, 'model');
  c.string(o, 'provider', { max: 64 });
  c.string(o, 'captureTime', { pattern: ISO_TIME, what: 'an ISO 8601 time' });
  c.string(o, 'completionTime', { pattern: ISO_TIME, what: 'an ISO 8601 time' });
  const lat = c.object(o, 'latencyMs');
  if (lat) for (const f of LATENCY_STAGES) c.at('latencyMs').number(lat, f, { min: 0 });
  c.number(o, 'coverage', { min: 0, max: 1 });
  const comps = o.components;
  if (!Array.isArray(comps)) {
    c.fail('components', 'an array', comps);
  } else {
    comps.forEach((comp: unknown, i) => {
      const cc = c.at(`components[${i}]`);
      if (!isObject(comp)) {
        c.fail(`components[${i}]`, 'an object', comp);
        return;
      }
      cc.number(comp, 'area', { min: 0, integer: true });
      cc.number(comp, 'areaPercent', { min: 0, max: 100 });
      const bbox = cc.object(comp, 'bbox');
      if (bbox) for (const f of ['x', 'y', 'width', 'height']) cc.at('bbox').number(bbox, f, { min: 0, integer: true });
      const centroid = cc.object(comp, 'centroid');
      if (centroid) for (const f of ['x', 'y']) cc.at('centroid').number(centroid, f);
      cc.number(comp, 'meanProbability', { min: 0, max: 1, optional: true });
    });
  }
  c.number(o, 'droppedComponents', { min: 0, integer: true });
  if (o.contours !== undefined && !Array.isArray(o.contours)) c.fail('contours', 'an array', o.contours);
  checkRle(c, o);
  c.noExtra(o, [
    'schema', 'device', 'seq', 'frame', 'model', 'provider', 'captureTime', 'completionTime', 'latencyMs',
    'coverage', 'components', 'droppedComponents', 'contours', 'rle',
  ]);
  return finish(c, value);
}

export function validateTelemetry(value: unknown): Validation<TelemetryMessage> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.literal(o, 'schema', TELEMETRY_SCHEMA);
  c.string(o, 'device', { max: 128 });
  c.string(o, 'time', { pattern: ISO_TIME, what: 'an ISO 8601 time' });
  c.number(o, 'fps', { min: 0 });
  const lat = c.object(o, 'latency_ms');
  if (lat) for (const f of ['p50', 'p95', 'p99']) c.at('latency_ms').number(lat, f, { min: 0 });
  c.number(o, 'drops', { min: 0, integer: true });
  c.string(o, 'provider', { max: 64 });
  c.number(o, 'cpu_pct', { min: 0 });
  c.number(o, 'memory_rss_bytes', { min: 0, integer: true });
  if (o.temperature_c !== null) c.number(o, 'temperature_c', { min: -100, max: 200 });
  c.number(o, 'uptime_s', { min: 0 });
  checkModel(c, o, 'model', true);
  const q = c.object(o, 'queue', true);
  if (q) {
    c.at('queue').number(q, 'pending', { min: 0, integer: true });
    c.at('queue').number(q, 'dropped', { min: 0, integer: true });
    c.at('queue').number(q, 'damaged', { min: 0, integer: true, optional: true });
    c.at('queue').number(q, 'refused', { min: 0, integer: true, optional: true });
  }
  return finish(c, value);
}

export function validateEvent(value: unknown): Validation<EventMessage> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.literal(o, 'schema', EVENT_SCHEMA);
  c.string(o, 'device', { max: 128 });
  c.string(o, 'time', { pattern: ISO_TIME, what: 'an ISO 8601 time' });
  c.oneOf(o, 'type', EVENT_TYPES);
  c.oneOf(o, 'severity', SEVERITIES);
  c.string(o, 'message', { max: 4096 });
  c.object(o, 'details', true);
  return finish(c, value);
}

export function validateStatus(value: unknown): Validation<StatusMessage> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.literal(o, 'schema', STATUS_SCHEMA);
  c.string(o, 'device', { max: 128 });
  c.oneOf(o, 'state', ['online', 'offline'] as const);
  c.string(o, 'time', { pattern: ISO_TIME, what: 'an ISO 8601 time' });
  const versions = c.object(o, 'versions');
  if (versions) for (const k of Object.keys(versions)) c.at('versions').string(versions, k, { max: 256 });
  return finish(c, value);
}

export function validateReply(value: unknown): Validation<CommandReply> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.literal(o, 'schema', REPLY_SCHEMA);
  if (o.id !== null) c.string(o, 'id', { max: MAX_ID_LENGTH });
  if (typeof o.ok !== 'boolean') c.fail('ok', 'a boolean', o.ok);
  if (o.ok === false) c.string(o, 'error', { max: 8192 });
  return finish(c, value);
}

const commandValidators: { [K in CommandName]: (c: Checker, o: Obj) => void } = {
  'set-threshold': (c, o) => {
    c.number(o, 'value', { min: 0, max: 1 });
    c.noExtra(o, ['id', 'value']);
  },
  snapshot: (c, o) => c.noExtra(o, ['id']),
  status: (c, o) => c.noExtra(o, ['id']),
  'reload-model': (c, o) => {
    const given = ['path', 'url', 'rollback'].filter((k) => o[k] !== undefined);
    if (given.length !== 1) {
      c.errors.push(`path|url|rollback: exactly one of path, url or rollback is required${given.length > 1 ? ` (got ${given.join(', ')})` : ''}`);
    }
    c.string(o, 'path', { optional: true, max: 4096 });
    c.string(o, 'url', { optional: true, max: 4096, pattern: /^https?:\/\/\S+$/, what: 'an http(s) URL' });
    if (o.rollback !== undefined && o.rollback !== true) c.fail('rollback', 'true', o.rollback);
    c.string(o, 'sha256', { optional: true, pattern: SHA256, what: '64 lowercase hex digits' });
    c.oneOf(o, 'precision', PRECISIONS, true);
    c.noExtra(o, ['id', 'path', 'url', 'rollback', 'sha256', 'precision']);
  },
};

export function isCommandName(name: string): name is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(name);
}

/** The request id of a command payload if it has a usable one, for replies to invalid requests. */
export function requestId(value: unknown): string | null {
  if (!isObject(value)) return null;
  const id = value.id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : null;
}

export function validateCommand<K extends CommandName>(name: K, value: unknown): Validation<CommandMap[K]> {
  const c = new Checker();
  const o = root(value, c);
  if (!o) return finish(c, value);
  c.string(o, 'id', { max: MAX_ID_LENGTH });
  commandValidators[name](c, o);
  return finish(c, value);
}
