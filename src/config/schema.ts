/**
 * The configuration schema: every key, its type, range, default and documentation, in one place.
 * `Config` is inferred from it; `docs/`-style tables come from `describeKeys()`.
 */
import { isAbsolute, join, resolve } from 'node:path';

import { PIXEL_FORMATS } from '../runtime/native/pixel-formats.js';
import { parseListen } from '../view/listen.js';
import {
  ArraySchema,
  BooleanSchema,
  EnumSchema,
  NullableSchema,
  NumberSchema,
  ObjectSchema,
  RecordSchema,
  ScalarSchema,
  StringSchema,
  type DefaultContext,
  type Infer,
  type Schema,
} from './schema-kit.js';

export const PRECISIONS = ['fp32', 'fp16', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * Short names of ONNX Runtime's execution providers, exactly as native/core/ort_runtime.cc
 * accepts them ("CPU", "CUDA", "TensorRT" get dedicated calls; the rest go through the by-name API).
 */
export const PROVIDER_NAMES = [
  'TensorRT',
  'CUDA',
  'QNN',
  'VSINPU',
  'ACL',
  'OpenVINO',
  'XNNPACK',
  'WebGPU',
  'SNPE',
  'CoreML',
  'DML',
  'AZURE',
  'WEBNN',
  'VitisAI',
  'CPU',
] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export const SOURCE_FORMATS = ['auto', ...PIXEL_FORMATS] as const;

/** Key paths (or prefixes) that a running worker applies without a restart. */
export const HOT_KEYS: readonly string[] = ['inference', 'publish', 'telemetry.interval_s'];

export function isHotKey(path: string): boolean {
  return HOT_KEYS.some((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`));
}

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function defaultDeviceId(dctx: DefaultContext): string {
  const cleaned = dctx.hostname.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return cleaned === '' ? 'lvunet-edge' : cleaned;
}

/** systemd's StateDirectory= when run as a service, else the XDG state folder of the user. */
function defaultStateDir(dctx: DefaultContext): string {
  const systemd = dctx.env.STATE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  const xdg = dctx.env.XDG_STATE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(dctx.homedir, '.local', 'state'), 'lvunet-edge');
}

function sourceUri(value: string): string | undefined {
  if (value === 'synthetic') return undefined;
  const m = /^(v4l2|folder|file):(.*)$/.exec(value);
  if (!m) return 'is not a source: use v4l2:/dev/videoN, folder:PATH, file:PATH or synthetic';
  if (m[2] === '') return `needs a path after "${m[1]}:"`;
  // udev's stable links (/dev/v4l/by-id/...) are accepted too: carts with two cameras need them.
  if (m[1] === 'v4l2' && !m[2].startsWith('/dev/')) return 'is not a V4L2 device: use v4l2:/dev/videoN (or a /dev/v4l/by-id link)';
  return undefined;
}

function normalizeSourceUri(value: string, baseDir: string): string {
  const m = /^(folder|file):(.*)$/.exec(value);
  if (!m || m[2].startsWith('/')) return value;
  return `${m[1]}:${join(baseDir, m[2])}`;
}

/** A failover node: mqtt:// or mqtts:// only (mqtt.js rotates host, port and scheme, not paths). */
function failoverUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL (e.g. mqtts://nats-2.fleet.lan:8883)';
  }
  return ['mqtt:', 'mqtts:'].includes(url.protocol) ? undefined : 'must use mqtt:// or mqtts://';
}

function mqttUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL (e.g. mqtts://broker.example:8883)';
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) return 'must use mqtt://, mqtts://, ws:// or wss://';
  if (url.hostname === '') return 'has no host';
  return undefined;
}

/** `[host:]port` of the live view (parseListen in src/view/listen.ts is the one parser). */
function listenSpec(value: string): string | undefined {
  try {
    parseListen(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function topicPrefix(value: string): string | undefined {
  if (value === '') return 'is empty';
  if (/[+#\0]/.test(value)) return 'must not contain MQTT wildcards (+, #)';
  if (value.startsWith('/') || value.endsWith('/') || value.includes('//')) return 'must not start or end with "/" or contain "//"';
  return undefined;
}

const str = (doc: string, def: string, more: Omit<ConstructorParameters<typeof StringSchema>[1], 'default'> = {}) =>
  new StringSchema(doc, { default: def, ...more });
const path = (doc: string) => new StringSchema(doc, { default: '', path: true });
const optionalPath = (doc: string) => new NullableSchema(doc, path(doc));

export const providerSchema = new ObjectSchema(
  'One execution provider',
  {
    name: new EnumSchema('ONNX Runtime provider name', PROVIDER_NAMES, 'CPU'),
    options: new RecordSchema(
      'Provider options as ONNX Runtime names them; `${...}` placeholders are filled at session creation (see profiles.ts)',
      new ScalarSchema('option value', ['string', 'number', 'boolean'] as const),
      /^[A-Za-z0-9_.]+$/,
      'an option name',
    ),
  },
  {
    required: ['name'],
    typeName: '{name, options}',
    refine: (p) => (p.name === 'CPU' && Object.keys(p.options).length > 0 ? [['options', 'the CPU provider takes no options']] : []),
  },
);
export type ProviderSpec = Infer<typeof providerSchema>;

export const providersSchema = new ArraySchema('Execution providers, in order of preference', providerSchema, [], { minItems: 1 });

export const configSchema = new ObjectSchema('lvunet-edge configuration', {
  device: new ObjectSchema('This device', {
    id: new StringSchema('Device id: MQTT topics and the broker ACL use it; must be unique in the fleet', {
      default: defaultDeviceId,
      defaultDoc: 'the host name',
      validate: (v) => (DEVICE_ID.test(v) ? undefined : 'is not a device id (letters, digits, "_", ".", "-"; 1-64 characters)'),
      format: 'device id',
    }),
    group: new NullableSchema(
      'Device group: a model bundle signed for a group (bundle sign --group) installs only on devices of that group; null: only bundles bound to no group',
      str('', '', { validate: (v) => (/^[A-Za-z0-9._-]{1,64}$/.test(v) ? undefined : 'is not a device group (letters, digits, "_", ".", "-"; 1-64 characters)'), format: 'device group' }),
    ),
  }),
  model: new ObjectSchema('The ONNX model', {
    path: new StringSchema('ONNX model file (relative paths: from the config file folder)', {
      default: (d) => join(d.cwd, 'out', 'demo', 'lvunet.fp32.onnx'),
      defaultDoc: 'out/demo/lvunet.fp32.onnx (what `npm run demo` builds)',
      path: true,
    }),
    precision: new EnumSchema("The model file's precision", PRECISIONS, 'fp32'),
    max_bytes: new NumberSchema('Largest model file read, bytes (checked before reading; only regular files are read)', {
      default: 512 * 1024 * 1024,
      min: 1,
      integer: true,
    }),
  }),
  runtime: new ObjectSchema('Native ONNX Runtime', {
    profile: new StringSchema('Provider profile: a name from deploy/profiles or a path to a profile .yaml', {
      default: 'cpu',
      validate: (v) => (/^[a-z0-9][a-z0-9-]*$/.test(v) || /\.ya?ml$/.test(v) ? undefined : 'is not a profile name or a .yaml path'),
      normalize: (v, baseDir) => (/\.ya?ml$/.test(v) && !isAbsolute(v) ? resolve(baseDir, v) : v),
      format: 'profile name | path',
    }),
    ort_library: optionalPath('libonnxruntime.so to load; null: $LVUNET_ORT_LIBRARY, else the one onnxruntime-node ships'),
    providers: new NullableSchema('Explicit providers; null: the profile\'s', providersSchema),
    strict: new BooleanSchema('Fail instead of falling back when a provider cannot be appended', false),
    threads: new NumberSchema('Intra-op threads; 0: ONNX Runtime decides', { default: 0, min: 0, max: 1024, integer: true }),
  }),
  source: new ObjectSchema('Frame source', {
    uri: new StringSchema('v4l2:/dev/videoN, folder:PATH, file:PATH or synthetic', {
      default: 'synthetic',
      validate: sourceUri,
      normalize: normalizeSourceUri,
      format: 'source uri',
    }),
    width: new NumberSchema('Capture width, pixels', { default: 640, min: 1, max: 65536, integer: true }),
    height: new NumberSchema('Capture height, pixels', { default: 480, min: 1, max: 65536, integer: true }),
    fps: new NumberSchema('Frames per second; 0: as fast as possible (replay) or the driver default (V4L2)', {
      default: 30,
      min: 0,
      max: 1000,
    }),
    format: new EnumSchema('Pixel format; auto: the best the camera offers', SOURCE_FORMATS, 'auto'),
    controls: new RecordSchema(
      'V4L2 controls by their v4l2-ctl name, e.g. exposure_time_absolute: 250',
      new ScalarSchema('control value', ['number', 'boolean'] as const, { integer: true }),
      /^[a-z0-9_]+$/,
      'a v4l2-ctl control name (lower case, digits, "_")',
    ),
  }),
  inference: new ObjectSchema('Post-processing (hot-reloadable)', {
    threshold: new NumberSchema('Sigmoid probability threshold for the mask', { default: 0.5, min: 0, max: 1 }),
    min_area_px: new NumberSchema('Regions smaller than this (pixels) are dropped', { default: 0, min: 0, integer: true }),
    fit: new EnumSchema('How frames are resized to the model input', ['stretch', 'letterbox'] as const, 'stretch'),
  }),
  publish: new ObjectSchema('What results carry (hot-reloadable)', {
    rle: new BooleanSchema('Include the run-length-encoded mask', true),
    contours: new BooleanSchema('Include region contours', false),
    every_n: new NumberSchema('Publish every n-th frame', { default: 1, min: 1, integer: true }),
  }),
  mqtt: new ObjectSchema('Broker connection', {
    url: new NullableSchema(
      'Broker URL; null: run without a broker (results stay local)',
      new StringSchema('', { default: '', validate: mqttUrl, format: 'mqtt(s)/ws(s) URL' }),
    ),
    prefix: str('Topic prefix: <prefix>/<device.id>/...', 'lvunet', { validate: topicPrefix, format: 'topic prefix' }),
    username: new NullableSchema('Broker user name', str('', '')),
    password: new NullableSchema('Broker password (prefer LVUNET_MQTT_PASSWORD to a file)', str('', '')),
    tls: new ObjectSchema('TLS (mqtts://, wss://)', {
      ca: optionalPath('CA bundle (PEM); null: the system CAs'),
      cert: optionalPath('Client certificate (PEM), for mutual TLS'),
      key: optionalPath('Client private key (PEM), for mutual TLS'),
      reject_unauthorized: new BooleanSchema('Verify the broker certificate', true),
    }),
    keepalive_s: new NumberSchema('MQTT keepalive, seconds', { default: 30, min: 0, max: 65535, integer: true }),
    protocol_version: new NumberSchema('MQTT version: 5, or 4 (MQTT 3.1.1) for a broker without MQTT 5 such as nats-server (deploy/nats/)', {
      default: 5,
      min: 4,
      max: 5,
      integer: true,
    }),
    failover_urls: new ArraySchema(
      'Other nodes of a clustered broker (deploy/nats/), same scheme as url: each reconnect tries the next of [url, ...these]',
      new StringSchema('', { default: '', validate: failoverUrl, format: 'mqtt(s) URL' }),
      [],
    ),
    queue: new ObjectSchema('Offline queue (messages kept while the broker is unreachable)', {
      dir: optionalPath('Queue folder; null: <state_dir>/mqtt-queue'),
      max_messages: new NumberSchema('Queue capacity', { default: 10000, min: 1, integer: true }),
      drop_policy: new EnumSchema('What a full queue drops', ['drop-oldest', 'drop-newest'] as const, 'drop-oldest'),
    }),
  }),
  ui: new ObjectSchema('Live view, /metrics and /healthz (src/view/); off unless listen is set', {
    listen: new NullableSchema(
      '[HOST:]PORT to serve on; a bare port binds 127.0.0.1 only. Any other host needs ui.token or ui.token_file. null: off',
      new StringSchema('', { default: '', validate: listenSpec, format: '[host:]port' }),
    ),
    token: new NullableSchema('Bearer token every request but /healthz must carry (prefer LVUNET_UI_TOKEN or ui.token_file)', str('', '')),
    token_file: optionalPath('File whose first line is the token (0600)'),
    max_fps: new NumberSchema('Pictures a second sent to each viewer, at most', { default: 10, min: 0, minExclusive: true, max: 30 }),
    max_width: new NumberSchema('Widest picture sent to viewers, px', { default: 640, min: 16, max: 3840, integer: true }),
  }),
  telemetry: new ObjectSchema('Telemetry', {
    interval_s: new NumberSchema('Telemetry period, seconds (hot-reloadable)', { default: 10, min: 0, minExclusive: true }),
  }),
  supervisor: new ObjectSchema(
    'Supervisor',
    {
      heartbeat_timeout_s: new NumberSchema('Worker silence that counts as a hang, seconds', {
        default: 10,
        min: 0,
        minExclusive: true,
      }),
      drain_timeout_s: new NumberSchema(
        'On SIGTERM, how long the worker may take to finish frames in flight before it is killed, seconds (a worker that sends nothing for 3 s after the stop request is killed sooner)',
        { default: 10, min: 0, minExclusive: true },
      ),
      restart: new ObjectSchema(
        'Worker restarts (exponential back-off)',
        {
          initial_ms: new NumberSchema('First back-off', { default: 500, min: 0, integer: true }),
          max_ms: new NumberSchema('Back-off ceiling', { default: 30000, min: 0, integer: true }),
          crash_loop_max: new NumberSchema('Crashes within the window that stop restarts', { default: 5, min: 1, integer: true }),
          crash_loop_window_s: new NumberSchema('Crash-loop window, seconds', { default: 60, min: 0, minExclusive: true }),
        },
        {
          refine: (r) => (r.max_ms < r.initial_ms ? [['max_ms', `${r.max_ms} is less than restart.initial_ms (${r.initial_ms})`]] : []),
        },
      ),
    },
  ),
  state_dir: new StringSchema('Writable state: last-known-good config, engine caches, queue', {
    default: defaultStateDir,
    defaultDoc: '$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/lvunet-edge, else ~/.local/state/lvunet-edge',
    path: true,
  }),
});

export type Config = Infer<typeof configSchema>;

/** A config layer (file, environment, CLI): any subset of the keys. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends Record<string, unknown>
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;
export type ConfigLayer = DeepPartial<Config>;

export const profileSchema = new ObjectSchema(
  'Provider profile (deploy/profiles/*.yaml)',
  {
    name: str('Profile name (= file stem)', '', {
      validate: (v) => (/^[a-z0-9][a-z0-9-]*$/.test(v) ? undefined : 'is not a profile name (lower case, digits, "-")'),
    }),
    description: str('What the profile is for', ''),
    expects_precision: new EnumSchema('Model precision the profile is made for', PRECISIONS, 'fp32'),
    providers: providersSchema,
  },
  { required: ['name', 'expects_precision', 'providers'] },
);
export type Profile = Infer<typeof profileSchema>;

/** The keys table as Markdown (deploy/config/README.md carries it; a test keeps the two equal). */
export function keysTableMarkdown(): string {
  const rows = describeKeys({ env: {}, hostname: '', homedir: '~', cwd: '.' });
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| key | type | default | hot | environment | meaning |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${r.hot ? 'yes' : ''} | \`${r.env}\` | ${cell(r.doc)} |`),
  ].join('\n');
}

export interface KeyDescription {
  key: string;
  type: string;
  default: string;
  hot: boolean;
  env: string;
  doc: string;
}

/** `LVUNET_<SECTION>_<KEY>`, e.g. LVUNET_MQTT_QUEUE_MAX_MESSAGES. */
export function envName(path: readonly string[]): string {
  return `LVUNET_${path.join('_').toUpperCase()}`;
}

/** Every leaf key (lists and mappings count as leaves), in schema order. */
export function leafKeys(schema: Schema<unknown> = configSchema, prefix: readonly string[] = []): { path: string[]; schema: Schema<unknown> }[] {
  if (schema instanceof ObjectSchema) {
    const fields = schema.fields as Record<string, Schema<unknown>>;
    return Object.entries(fields).flatMap(([k, s]) => leafKeys(s, [...prefix, k]));
  }
  return [{ path: [...prefix], schema }];
}

/** The keys table (README / `config keys`). */
export function describeKeys(dctx: DefaultContext): KeyDescription[] {
  return leafKeys().map(({ path: p, schema }) => ({
    key: p.join('.'),
    type: schema.describe(),
    default: schema.describeDefault(dctx),
    hot: isHotKey(p.join('.')),
    env: envName(p),
    doc: schema.doc,
  }));
}
