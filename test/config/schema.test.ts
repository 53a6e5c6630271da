import t from 'tap';

import {
  HOT_KEYS,
  configSchema,
  describeKeys,
  envName,
  formatIssue,
  isHotKey,
  loadConfig,
  type Config,
} from '../../src/config/index.js';
import { didYouMean, levenshtein } from '../../src/config/schema-kit.js';
import { leafKeys } from '../../src/config/schema.js';

import { BASE, issuesOf } from './helpers.js';

t.test('the embedded defaults are complete and run without a broker', async (t) => {
  const { config, origin, providersFrom, events } = loadConfig(BASE);
  t.equal(origin, 'defaults');
  t.same(events, []);
  t.equal(config.device.id, 'cart-1', 'device id defaults to the host name');
  t.equal(config.mqtt.url, null, 'no broker by default');
  t.equal(config.mqtt.prefix, 'lvunet');
  t.equal(config.source.uri, 'synthetic');
  t.equal(config.inference.threshold, 0.5);
  t.equal(config.inference.fit, 'stretch');
  t.equal(config.model.precision, 'fp32');
  t.equal(config.model.path, '/srv/out/demo/lvunet.fp32.onnx', 'relative default resolved from the working directory');
  t.equal(config.runtime.profile, 'cpu');
  t.equal(providersFrom, 'profile');
  t.same(config.runtime.providers, [{ name: 'CPU', options: {} }]);
  t.equal(config.state_dir, '/home/op/.local/state/lvunet-edge');
  t.equal(config.mqtt.queue.dir, '/home/op/.local/state/lvunet-edge/mqtt-queue', 'queue folder filled from state_dir');
  t.equal(config.supervisor.restart.crash_loop_max, 5);
});

t.test('state_dir default follows systemd StateDirectory and XDG_STATE_HOME', async (t) => {
  t.equal(loadConfig({ ...BASE, env: { STATE_DIRECTORY: '/var/lib/lvunet-edge' } }).config.state_dir, '/var/lib/lvunet-edge');
  t.equal(loadConfig({ ...BASE, env: { XDG_STATE_HOME: '/x/state' } }).config.state_dir, '/x/state/lvunet-edge');
});

t.test('a host name that is not a valid device id is cleaned up', async (t) => {
  t.equal(loadConfig({ ...BASE, hostname: 'Cart #7 (OR)' }).config.device.id, 'Cart--7--OR-');
});

t.test('wrong type names the key path', async (t) => {
  const [issue, ...rest] = issuesOf({ cli: { inference: { threshold: 'high' } } });
  t.same(rest, []);
  t.match(issue, { source: 'cli', path: 'inference.threshold', kind: 'type' });
  t.equal(formatIssue(issue), 'cli: inference.threshold: "high" is not a number');
});

t.test('out of range names the key path and the range', async (t) => {
  const [issue] = issuesOf({ cli: { inference: { threshold: 1.7 } } });
  t.equal(formatIssue(issue), 'cli: inference.threshold: 1.7 is not in [0, 1]');
  t.equal(issuesOf({ cli: { publish: { every_n: 0 } } })[0].message, '0 is not >= 1');
  t.equal(issuesOf({ cli: { telemetry: { interval_s: 0 } } })[0].message, '0 is not > 0');
  t.equal(issuesOf({ cli: { publish: { every_n: 1.5 } } })[0].message, '1.5 is not an integer');
});

t.test('unknown keys are errors with a did-you-mean', async (t) => {
  const [typo] = issuesOf({ cli: { inference: { treshold: 0.4 } } });
  t.match(typo, { path: 'inference.treshold', kind: 'unknown-key' });
  t.equal(typo.message, 'unknown key (did you mean "threshold"?)');
  const [section] = issuesOf({ cli: { mqqt: {} } });
  t.match(section, { path: 'mqqt', message: 'unknown key (did you mean "mqtt"?)' });
  const [moved] = issuesOf({ cli: { inference: { rle: true } } });
  t.equal(moved.message, 'unknown key (did you mean "publish.rle"?)', 'a key in the wrong section points to the right one');
  const [far] = issuesOf({ cli: { publish: { zzzzzz: 1 } } });
  t.match(far.message, /^unknown key; known keys here: rle, contours, every_n$/);
});

t.test('bad enum values list the choices', async (t) => {
  const [p] = issuesOf({ cli: { model: { precision: 'fp64' } } });
  t.match(p, { path: 'model.precision', kind: 'enum' });
  t.equal(p.message, '"fp64" is not one of fp32, fp16, int8');
  const [fit] = issuesOf({ cli: { inference: { fit: 'letterbx' } } });
  t.equal(fit.message, '"letterbx" is not one of stretch, letterbox (did you mean "letterbox"?)');
  const [drop] = issuesOf({ cli: { mqtt: { queue: { drop_policy: 'oldest' } } } });
  t.equal(drop.path, 'mqtt.queue.drop_policy');
});

t.test('format rules: source uri, mqtt url, topic prefix, device id, providers', async (t) => {
  const issues = issuesOf({
    cli: {
      source: { uri: 'camera0', controls: { Exposure: 3 } },
      mqtt: { url: 'http://broker', prefix: 'lvunet/#' },
      device: { id: 'cart/7' },
      runtime: { providers: [{ name: 'Tensorrt' }, { name: 'CPU', options: { x: '1' } }] },
    },
  });
  const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
  t.match(byPath['source.uri'], /is not a source: use v4l2:\/dev\/videoN, folder:PATH, file:PATH or synthetic/);
  t.match(byPath['source.controls.Exposure'], /is not a v4l2-ctl control name/);
  t.match(byPath['mqtt.url'], /must use mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
  t.match(byPath['mqtt.prefix'], /wildcards/);
  t.match(byPath['device.id'], /is not a device id/);
  t.match(byPath['runtime.providers[0].name'], /did you mean "TensorRT"/);
  t.match(byPath['runtime.providers[1].options'], /the CPU provider takes no options/);
  t.equal(issuesOf({ cli: { source: { uri: 'v4l2:video0' } } })[0].path, 'source.uri');
  t.equal(loadConfig({ ...BASE, cli: { source: { uri: 'v4l2:/dev/video2' } } }).config.source.uri, 'v4l2:/dev/video2');
  t.equal(loadConfig({ ...BASE, cli: { source: { uri: 'folder:frames' } } }).config.source.uri, 'folder:/srv/frames');
});

t.test('several problems are reported at once', async (t) => {
  const issues = issuesOf({
    cli: {
      inference: { threshold: 2, fit: 'crop' },
      publish: { rle: 'yes' },
      mqtt: { keepalive_s: -1 },
      tememetry: {},
    },
  });
  t.same(
    issues.map((i) => i.path),
    ['inference.threshold', 'inference.fit', 'publish.rle', 'mqtt.keepalive_s', 'tememetry'],
  );
  try {
    loadConfig({ ...BASE, cli: { inference: { threshold: 2 }, publish: { rle: 'yes' } } });
    t.fail('should throw');
  } catch (err) {
    t.match((err as Error).message, /^invalid configuration \(2 problems\):\n {2}cli: inference\.threshold: 2 is not in \[0, 1\]\n {2}cli: publish\.rle: "yes" is not a boolean/);
  }
});

t.test('cross-field rules are charged to the layer that set the key', async (t) => {
  const [restart] = issuesOf({ cli: { 'supervisor.restart.max_ms': 100 } });
  t.match(restart, { source: 'cli', path: 'supervisor.restart.max_ms', kind: 'constraint' });
  t.match(restart.message, /less than restart.initial_ms \(500\)/);
  const [tls] = issuesOf({ env: { LVUNET_MQTT_TLS_CERT: '/pki/c.crt' } });
  t.match(tls, { source: 'LVUNET_MQTT_TLS_CERT', path: 'mqtt.tls.cert', kind: 'constraint' });
  const order = issuesOf({ cli: { runtime: { providers: [{ name: 'CPU' }, { name: 'CUDA' }, { name: 'CUDA' }] } } });
  t.same(
    order.map((i) => [i.path, i.message]),
    [
      ['runtime.providers[0]', 'CPU must be the last provider (the ones after it are never used)'],
      ['runtime.providers[2]', 'CUDA is listed twice'],
    ],
  );
});

t.test('every leaf key has a documented row and a unique environment variable', async (t) => {
  const rows = describeKeys({ env: {}, hostname: 'h', homedir: '/home/u', cwd: '/w' });
  const keys = rows.map((r) => r.key);
  t.same(keys, [
    'device.id',
    'device.group',
    'model.path',
    'model.precision',
    'model.max_bytes',
    'runtime.profile',
    'runtime.ort_library',
    'runtime.providers',
    'runtime.strict',
    'runtime.threads',
    'source.uri',
    'source.width',
    'source.height',
    'source.fps',
    'source.format',
    'source.controls',
    'inference.threshold',
    'inference.min_area_px',
    'inference.fit',
    'publish.rle',
    'publish.contours',
    'publish.every_n',
    'mqtt.url',
    'mqtt.prefix',
    'mqtt.username',
    'mqtt.password',
    'mqtt.tls.ca',
    'mqtt.tls.cert',
    'mqtt.tls.key',
    'mqtt.tls.reject_unauthorized',
    'mqtt.keepalive_s',
    'mqtt.protocol_version',
    'mqtt.failover_urls',
    'mqtt.queue.dir',
    'mqtt.queue.max_messages',
    'mqtt.queue.drop_policy',
    'ui.listen',
    'ui.token',
    'ui.token_file',
    'ui.max_fps',
    'ui.max_width',
    'telemetry.interval_s',
    'supervisor.heartbeat_timeout_s',
    'supervisor.drain_timeout_s',
    'supervisor.restart.initial_ms',
    'supervisor.restart.max_ms',
    'supervisor.restart.crash_loop_max',
    'supervisor.restart.crash_loop_window_s',
    'state_dir',
  ]);
  t.equal(new Set(rows.map((r) => r.env)).size, rows.length, 'environment names do not collide');
  t.ok(rows.every((r) => r.doc.length > 0), 'every key is documented');
  t.same(
    rows.filter((r) => r.hot).map((r) => r.key),
    ['inference.threshold', 'inference.min_area_px', 'inference.fit', 'publish.rle', 'publish.contours', 'publish.every_n', 'telemetry.interval_s'],
  );
  t.equal(envName(['mqtt', 'queue', 'max_messages']), 'LVUNET_MQTT_QUEUE_MAX_MESSAGES');
  t.same(HOT_KEYS, ['inference', 'publish', 'telemetry.interval_s']);
  t.ok(isHotKey('inference.threshold') && !isHotKey('telemetry') && !isHotKey('inferences.x'));
});

t.test('the Config type and the schema stay in lockstep', async (t) => {
  // Compile-time: a complete Config literal must type-check against the inferred type.
  const sample: Config = configSchema.defaultValue({ env: {}, hostname: 'h', homedir: '/h', cwd: '/w' });
  const threshold: number = sample.inference.threshold;
  const precision: 'fp32' | 'fp16' | 'int8' = sample.model.precision;
  const url: string | null = sample.mqtt.url;
  const drop: 'drop-oldest' | 'drop-newest' = sample.mqtt.queue.drop_policy;
  t.same([threshold, precision, url, drop], [0.5, 'fp32', null, 'drop-oldest']);
  t.equal(leafKeys().length, 49);
});

t.test('did-you-mean', async (t) => {
  t.equal(levenshtein('kitten', 'sitting'), 3);
  t.equal(didYouMean('treshold', ['threshold', 'fit']), 'threshold');
  t.equal(didYouMean('TENSORRT', ['TensorRT', 'CUDA']), 'TensorRT');
  t.equal(didYouMean('zzz', ['threshold']), undefined);
});
