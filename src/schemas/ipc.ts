/**
 * The messages between the supervisor and its worker process (Node IPC, JSON serialisation: Node
 * 20's 'advanced' mode crashed inside child_process when a worker was SIGKILLed mid-stream), tagged
 * by `type`. Both sides validate every message they receive; an unknown or malformed one is a fault,
 * not something to guess at. Internal to one device (not a fleet interface), published for
 * completeness and for tools that read the IPC stream.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Closed, Count, Int, Num, OneOf, Sha256, Str, compile, type Immutable } from './kit.js';

const Details = () => Type.Record(Type.String(), Type.Unknown());

export const PlannedProviderSchema = Type.Object({
  name: Str(64),
  options: Type.Record(Type.String(), Type.String(), { description: 'Provider options with every placeholder filled.' }),
});

/** What the worker reports once its session is open and its source started. */
export const StartupReportSchema = Type.Object({
  ortVersion: Type.String(),
  ortLibrary: Type.String(),
  providers: Type.Object({
    requested: Type.Array(Type.String()),
    active: Type.Array(Type.String()),
    fallbacks: Type.Array(Type.Object({ provider: Type.String(), reason: Type.String() })),
  }),
  plan: Type.Array(PlannedProviderSchema, { description: 'The providers and options the session was created with (the config plan, placeholders filled).' }),
  model: Type.Object({
    path: Type.String(),
    name: Type.Optional(Str(256, { description: "The manifest's model name." })),
    sha256: Sha256(),
    precision: Str(32),
    inputSize: Type.Tuple([Int({ minimum: 1 }), Int({ minimum: 1 })], { description: '[width, height] of the model input.' }),
  }),
  source: Type.String(),
});
export type StartupReport = Immutable<Static<typeof StartupReportSchema>>;

export const WorkerEventSchema = Type.Object({
  type: Str(64),
  severity: OneOf(['info', 'warning', 'error'] as const),
  message: Type.String(),
  details: Type.Optional(Details()),
});
export type WorkerEvent = Immutable<Static<typeof WorkerEventSchema>>;

/** What the worker reports about its pace every second, and once more at the end (final). */
export const WorkerStatsSchema = Type.Object(
  {
    frames: Count('Results this worker produced.'),
    fps: Type.Optional(Num({ minimum: 0, description: 'Results a second (last 5 s).' })),
    captured: Type.Optional(Count('Frames captured by this worker.')),
    drops: Type.Optional(Count('Frames dropped by this worker.')),
    dropsByReason: Type.Optional(Type.Record(Type.String(), Count(), { description: '`<stage>:<reason>` -> frames.' })),
    loopLagMs: Type.Optional(
      Type.Object({ p50: Num({ minimum: 0 }), p99: Num({ minimum: 0 }), max: Num({ minimum: 0 }) }, { description: "The worker's event-loop delay over the last second, ms." }),
    ),
    threshold: Type.Optional(Num({ minimum: 0, maximum: 1, description: 'The threshold the next frame is summarised with.' })),
    previews: Type.Optional(Count('Live-view pictures sent.')),
    final: Type.Optional(Type.Boolean({ description: 'The last stats of a finished pipeline.' })),
  },
  { description: 'Worker pace figures (fleet telemetry, the live view, /metrics).' },
);
export type WorkerStatsMessage = Immutable<Static<typeof WorkerStatsSchema>>;

/**
 * A live-view picture (src/view/): the frame shrunk to the preview size as JPEG and the overlay
 * layer (src/image/overlay.ts) at the model's resolution as a transparent palette PNG, both
 * base64; the viewer scales the layer over the picture. Sent only
 * while the supervisor asked for previews, at its rate.
 */
export const PreviewMessageSchema = Type.Object({
  type: Type.Literal('preview'),
  frame: Str(256, { description: 'The id of the frame (and of its result).' }),
  width: Int({ minimum: 1 }),
  height: Int({ minimum: 1 }),
  jpeg: Type.String({ contentEncoding: 'base64', description: 'The frame, JPEG.' }),
  overlay: Type.String({ contentEncoding: 'base64', description: 'The overlay layer at model resolution, palette PNG with transparency, drawn scaled to width x height.' }),
});
export type PreviewMessage = Immutable<Static<typeof PreviewMessageSchema>>;

export const WorkerMessageSchema = Type.Union(
  [
    Type.Object({ type: Type.Literal('ready'), report: StartupReportSchema }),
    Type.Object({
      type: Type.Literal('result'),
      // Checked as result@1 by the receiver, which reports a bad one as such; the envelope stays
      // valid so that a bad result still counts as a sign of life for the stall watchdog.
      result: Type.Record(Type.String(), Type.Unknown(), { description: 'A lvunet-edge/result@1 object (result.json).' }),
    }),
    Type.Object({ type: Type.Literal('heartbeat'), frames: Count() }),
    Type.Object({ type: Type.Literal('event'), event: WorkerEventSchema }),
    Type.Object({ type: Type.Literal('stats'), stats: WorkerStatsSchema }),
    Type.Object({
      type: Type.Literal('reply'),
      id: Str(128),
      ok: Type.Boolean(),
      result: Type.Optional(Type.Unknown()),
      error: Type.Optional(Type.String()),
      details: Type.Optional(Details()),
    }),
    Type.Object({ type: Type.Literal('stopped'), frames: Count(), reason: Type.String() }),
    PreviewMessageSchema,
  ],
  { title: 'lvunet-edge/ipc/worker@1', description: 'Worker -> supervisor.' },
);
export type WorkerMessage = Immutable<Static<typeof WorkerMessageSchema>>;

export const SupervisorMessageSchema = Type.Union(
  [
    Type.Object({ type: Type.Literal('start'), config: Type.Unknown({ description: 'The worker start configuration (config schema: src/config/schema.ts).' }) }),
    Type.Object({ type: Type.Literal('update'), patch: Details() }),
    Type.Object({ type: Type.Literal('command'), id: Str(128), name: Str(64), args: Type.Unknown() }),
    Closed({ type: Type.Literal('reopen-source') }),
    Closed(
      {
        type: Type.Literal('preview'),
        fps: Num({ minimum: 0, maximum: 30, description: 'Previews a second at most; 0 stops them (no viewer).' }),
        maxWidth: Int({ minimum: 16, maximum: 3840, description: 'Widest preview picture, px (a narrower frame keeps its size).' }),
      },
      { description: 'The live view wants pictures (a viewer is connected) or no longer does.' },
    ),
    Closed({ type: Type.Literal('stop') }),
  ],
  { title: 'lvunet-edge/ipc/supervisor@1', description: 'Supervisor -> worker.' },
);
export type SupervisorMessage = Immutable<Static<typeof SupervisorMessageSchema>>;

export const workerMessage = compile(WorkerMessageSchema);
export const supervisorMessage = compile(SupervisorMessageSchema);

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return workerMessage.check(m);
}

export function isSupervisorMessage(m: unknown): m is SupervisorMessage {
  return supervisorMessage.check(m);
}
