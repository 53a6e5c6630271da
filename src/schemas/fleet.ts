/**
 * The versioned JSON payloads of the fleet topics (src/fleet/topics.ts), defined once: type,
 * validator and published JSON Schema all come from the values below (see kit.ts).
 * A change to a field's meaning needs a new `@version`; adding an optional field does not.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Closed, Count, type Validation, HTTP_URL_PATTERN, IsoTime, Num, OneOf, Sha256, Str, compile, exactlyOneOf } from './kit.js';
import { ModelRefSchema, RESULT_SCHEMA, resultProperties, type ResultV1 } from './result.js';

export const TELEMETRY_SCHEMA = 'lvunet-edge/telemetry@1';
export const EVENT_SCHEMA = 'lvunet-edge/event@1';
export const STATUS_SCHEMA = 'lvunet-edge/status@1';
export const REPLY_SCHEMA = 'lvunet-edge/reply@1';
export { RESULT_SCHEMA };

const MAX_ID_LENGTH = 128;
const Device = () => Str(128, { description: 'The device id ([A-Za-z0-9._-], as in its topic and certificate CN).' });

export type { ModelRef } from './result.js';

// ---------------------------------------------------------------------------------------------
// result
// ---------------------------------------------------------------------------------------------

/**
 * A result on `<prefix>/<device>/result`: the pipeline's result@1 object plus the device and a
 * per-device seq, strictly increasing and persisted across restarts. Delivery is at-least-once:
 * consumers deduplicate on (device, seq). `frame.seq` is the source's frame counter, which restarts
 * with the worker; `seq` does not.
 */
export const ResultMessageSchema = Closed(
  {
    ...resultProperties,
    device: Device(),
    seq: Count('Per-device result number: strictly increasing, persisted across restarts; deduplicate on (device, seq).'),
  },
  { title: `${RESULT_SCHEMA} (MQTT)`, description: 'A result on <prefix>/<device>/result: result@1 plus device and seq.' },
);
export type ResultMessage = Static<typeof ResultMessageSchema>;
/** What the pipeline hands to FleetLink; the link adds device and seq. */
export type ResultBody = ResultV1;

// ---------------------------------------------------------------------------------------------
// telemetry
// ---------------------------------------------------------------------------------------------

export const PercentilesSchema = Closed({ p50: Num({ minimum: 0 }), p95: Num({ minimum: 0 }), p99: Num({ minimum: 0 }) });
export type Percentiles = Static<typeof PercentilesSchema>;

export const TelemetryMessageSchema = Type.Object(
  {
    schema: Type.Literal(TELEMETRY_SCHEMA),
    device: Device(),
    time: IsoTime(),
    fps: Num({ minimum: 0 }),
    latency_ms: PercentilesSchema,
    drops: Count('Frames dropped since start.'),
    provider: Str(64),
    cpu_pct: Num({ minimum: 0, description: 'Process CPU use over the last interval, 100 = one core.' }),
    memory_rss_bytes: Count(),
    temperature_c: Type.Union([Num({ minimum: -100, maximum: 200 }), Type.Null()], { description: 'null where the board exposes no thermal zone.' }),
    uptime_s: Num({ minimum: 0 }),
    model: Type.Union([ModelRefSchema, Type.Null()]),
    event_loop_lag_ms: Type.Optional(Num({ minimum: 0, description: "p99 event-loop delay of the process that owns the link (the supervisor) over the last interval, ms." })),
    worker_restarts: Type.Optional(Count('Worker processes restarted since the supervisor started.')),
    queue: Type.Optional(
      Type.Object(
        {
          pending: Count('Messages waiting in the offline queue.'),
          dropped: Count('Dropped from it since it was created (bounds, drop policy, failed disk writes).'),
          damaged: Type.Optional(Count('Queued records found unreadable on disk (bit rot, torn writes) since this process started.')),
          refused: Type.Optional(Count('Publishes the broker answered with a failure reason code (kept queued and retried) since this process started.')),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { title: TELEMETRY_SCHEMA, description: 'Periodic device figures on <prefix>/<device>/telemetry.' },
);
export type TelemetryMessage = Static<typeof TelemetryMessageSchema>;

// ---------------------------------------------------------------------------------------------
// event
// ---------------------------------------------------------------------------------------------

export const EVENT_TYPES = ['model-changed', 'fault', 'restart', 'fallback', 'config', 'drop', 'command', 'other'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const SEVERITIES = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const EventMessageSchema = Type.Object(
  {
    schema: Type.Literal(EVENT_SCHEMA),
    device: Device(),
    time: IsoTime(),
    type: OneOf(EVENT_TYPES),
    severity: OneOf(SEVERITIES),
    message: Str(4096),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { title: EVENT_SCHEMA, description: 'Something that happened on the device, on <prefix>/<device>/event.' },
);
export type EventMessage = Static<typeof EventMessageSchema>;

// ---------------------------------------------------------------------------------------------
// status (birth and last will, retained)
// ---------------------------------------------------------------------------------------------

export const StatusMessageSchema = Type.Object(
  {
    schema: Type.Literal(STATUS_SCHEMA),
    device: Device(),
    state: OneOf(['online', 'offline'] as const),
    time: IsoTime('When the state was announced; the last will carries the time it was registered at connect.'),
    versions: Type.Record(Type.String(), Str(256)),
  },
  { title: STATUS_SCHEMA, description: 'Retained birth/last-will message on <prefix>/<device>/status.' },
);
export type StatusMessage = Static<typeof StatusMessageSchema>;

// ---------------------------------------------------------------------------------------------
// commands and replies
// ---------------------------------------------------------------------------------------------

const RequestId = () => Str(MAX_ID_LENGTH, { description: 'Chosen by the sender; echoed in the reply.' });

export const SetThresholdCommandSchema = Closed(
  { id: RequestId(), value: Num({ minimum: 0, maximum: 1, description: 'Foreground is probability > value.' }) },
  { title: 'lvunet-edge/cmd/set-threshold@1' },
);
export const SnapshotCommandSchema = Closed({ id: RequestId() }, { title: 'lvunet-edge/cmd/snapshot@1' });
export const StatusCommandSchema = Closed({ id: RequestId() }, { title: 'lvunet-edge/cmd/status@1' });
/**
 * Exactly one of `path` (a bundle directory on the device), `url` (an http(s) bundle base URL) or
 * `rollback: true` (make the previous installed bundle current again).
 */
export const ReloadModelCommandSchema = Closed(
  {
    id: RequestId(),
    path: Type.Optional(Str(4096, { description: 'A bundle directory on the device.' })),
    url: Type.Optional(Type.String({ maxLength: 4096, pattern: HTTP_URL_PATTERN, description: 'An http(s) bundle base URL.' })),
    rollback: Type.Optional(Type.Literal(true, { description: 'Make the previous installed bundle current again.' })),
    sha256: Type.Optional(Sha256('Expected sha256 of the model file that will serve, checked before it is swapped in.')),
    precision: Type.Optional(OneOf(['fp32', 'fp16', 'int8'] as const, 'Expected precision of that model file.')),
  },
  { title: 'lvunet-edge/cmd/reload-model@1', ...exactlyOneOf('path', 'url', 'rollback') },
);

export const COMMAND_SCHEMAS = {
  'set-threshold': SetThresholdCommandSchema,
  snapshot: SnapshotCommandSchema,
  'reload-model': ReloadModelCommandSchema,
  status: StatusCommandSchema,
};
export type SetThresholdCommand = Static<typeof SetThresholdCommandSchema>;
export type SnapshotCommand = Static<typeof SnapshotCommandSchema>;
export type ReloadModelCommand = Static<typeof ReloadModelCommandSchema>;
export type StatusCommand = Static<typeof StatusCommandSchema>;
export type CommandMap = { [K in keyof typeof COMMAND_SCHEMAS]: Static<(typeof COMMAND_SCHEMAS)[K]> };
export type CommandName = keyof CommandMap;
export const COMMAND_NAMES = Object.keys(COMMAND_SCHEMAS) as readonly CommandName[];

export const CommandReplySchema = Type.Union(
  [
    Type.Object({
      schema: Type.Literal(REPLY_SCHEMA),
      id: Type.Union([RequestId(), Type.Null()]),
      ok: Type.Literal(true),
      result: Type.Optional(Type.Unknown({ description: "The command's result (see src/fleet/README.md)." })),
    }),
    Type.Object({
      schema: Type.Literal(REPLY_SCHEMA),
      id: Type.Union([RequestId(), Type.Null()], { description: 'The request id, or null when the request was too broken to carry one.' }),
      ok: Type.Literal(false),
      error: Str(8192, { description: 'What went wrong, naming the field or step.' }),
    }),
  ],
  { title: REPLY_SCHEMA, description: 'The answer to cmd/<name>, on cmd/<name>/reply.' },
);
/** One type for both outcomes, as the link builds and reads them. */
export interface CommandReply {
  schema: typeof REPLY_SCHEMA;
  id: string | null;
  ok: boolean;
  error?: string;
  result?: unknown;
}

// ---------------------------------------------------------------------------------------------
// validators
// ---------------------------------------------------------------------------------------------

export const resultMessage = compile(ResultMessageSchema);
export const telemetryMessage = compile(TelemetryMessageSchema);
export const eventMessage = compile(EventMessageSchema);
export const statusMessage = compile(StatusMessageSchema);
export const commandReply = compile(CommandReplySchema);
const commandValidators = {
  'set-threshold': compile(SetThresholdCommandSchema),
  snapshot: compile(SnapshotCommandSchema),
  'reload-model': compile(ReloadModelCommandSchema),
  status: compile(StatusCommandSchema),
};

export const validateResult = (value: unknown) => resultMessage.validate(value);
export const validateTelemetry = (value: unknown) => telemetryMessage.validate(value);
export const validateEvent = (value: unknown) => eventMessage.validate(value);
export const validateStatus = (value: unknown) => statusMessage.validate(value);
// Typed as CommandReply: this assignment is what keeps the interface a supertype of the schema's union.
export const validateReply = (value: unknown): Validation<CommandReply> => commandReply.validate(value);

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_SCHEMAS, name);
}

export function validateCommand<K extends CommandName>(name: K, value: unknown): { ok: true; value: CommandMap[K] } | { ok: false; errors: string[] } {
  return commandValidators[name].validate(value) as { ok: true; value: CommandMap[K] } | { ok: false; errors: string[] };
}

/** The request id of a command payload if it has a usable one, for replies to invalid requests. */
export function requestId(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const id = (value as Record<string, unknown>).id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : null;
}
