import t from 'tap';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import {
  ConfigError,
  LAST_KNOWN_GOOD_FILE,
  formatIssue,
  loadConfig,
  overridesFromAssignments,
  redactConfig,
  saveLastKnownGood,
} from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/paths.js';

import { BASE, issuesOf } from './helpers.js';

t.test('YAML file: values, relative paths from the file folder, origins', async (t) => {
  const dir = t.testdir({
    'config.yaml': [
      'device:',
      '  id: cart-9',
      'model:',
      '  path: models/m.onnx',
      'inference:',
      '  threshold: 0.3',
      'source:',
      '  uri: folder:frames',
      'state_dir: state',
      '',
    ].join('\n'),
  });
  const path = join(dir, 'config.yaml');
  const loaded = loadConfig({ ...BASE, path });
  t.equal(loaded.origin, 'file');
  t.equal(loaded.file, path);
  t.match(loaded.fileSha256, /^[0-9a-f]{64}$/);
  t.equal(loaded.config.device.id, 'cart-9');
  t.equal(loaded.config.model.path, join(dir, 'models', 'm.onnx'));
  t.equal(loaded.config.source.uri, `folder:${join(dir, 'frames')}`);
  t.equal(loaded.config.state_dir, join(dir, 'state'));
  t.equal(loaded.config.inference.threshold, 0.3);
  t.equal(loaded.origins['inference.threshold'], path);
  t.equal(loaded.origins['inference.fit'], 'default');
});

t.test('JSON by extension and by content; empty and absent files', async (t) => {
  const dir = t.testdir({
    'c.json': '{"inference": {"threshold": 0.25}}',
    'c.conf': '{"publish": {"every_n": 3}}',
    'bad.json': '{"inference": {"threshold": 0.25,}}',
    'empty.yaml': '# nothing but a comment\n',
  });
  t.equal(loadConfig({ ...BASE, path: join(dir, 'c.json') }).config.inference.threshold, 0.25);
  t.equal(loadConfig({ ...BASE, path: join(dir, 'c.conf') }).config.publish.every_n, 3);
  const [bad] = issuesOf({ path: join(dir, 'bad.json') });
  t.match(bad, { kind: 'parse', path: '' });
  t.match(bad.message, /^not valid JSON/);
  t.equal(loadConfig({ ...BASE, path: join(dir, 'empty.yaml') }).config.inference.threshold, 0.5, 'empty file: defaults');
  const missing = join(dir, 'missing.yaml');
  t.equal(loadConfig({ ...BASE, path: missing, optional: true }).origin, 'defaults', 'optional missing file: defaults');
  t.match(issuesOf({ path: missing })[0].message, /cannot read the config file/, 'a required file must exist');
});

// issue 18 finding 8: a FIFO nobody writes blocked the (supervisor) process, /dev/zero was read
// without limit. Config files are read only as regular files of at most 1 MiB.
t.test('a FIFO, a device or an oversized file as the config is refused at once, by name', { skip: spawnSync('mkfifo', ['--version']).status === 0 ? false : 'mkfifo is not available' }, async (t) => {
  const dir = t.testdir({ 'big.yaml': `# ${'x'.repeat(1024 * 1024)}\n` });
  const fifo = join(dir, 'fifo.yaml');
  spawnSync('mkfifo', [fifo]);
  t.match(issuesOf({ path: fifo })[0], { kind: 'parse', message: `cannot read the config file: ${fifo}: is a FIFO, not a regular file; refusing to read it` });
  t.match(issuesOf({ path: '/dev/zero' })[0].message, /\/dev\/zero: is a character device, not a regular file/);
  t.match(issuesOf({ path: join(dir, 'big.yaml') })[0].message, /big\.yaml: is 1048579 bytes, over the limit of 1048576 bytes/);
});

t.test('file errors name the file, the key path and the line; all at once', async (t) => {
  const dir = t.testdir({
    'config.yaml': ['inference:', '  threshold: 1.7', '  fit: crop', 'publish:', '  rle: yes', '  evry_n: 2', ''].join('\n'),
    'broken.yaml': 'inference:\n  threshold: [1,\n',
    'dup.yaml': 'inference:\n  threshold: 0.1\n  threshold: 0.2\n',
    'list.yaml': '- a\n- b\n',
  });
  const path = join(dir, 'config.yaml');
  const issues = issuesOf({ path });
  t.same(
    issues.map((i) => formatIssue(i).replace(path, 'config.yaml')),
    [
      'config.yaml: inference.threshold: 1.7 is not in [0, 1] (line 2)',
      'config.yaml: inference.fit: "crop" is not one of stretch, letterbox (line 3)',
      'config.yaml: publish.rle: "yes" is not a boolean (true or false) (line 5)',
      'config.yaml: publish.evry_n: unknown key (did you mean "every_n"?) (line 6)',
    ],
  );
  t.match(issuesOf({ path: join(dir, 'broken.yaml') })[0], { kind: 'parse', message: /^not valid YAML/ });
  t.match(issuesOf({ path: join(dir, 'dup.yaml') })[0].message, /unique/);
  t.match(issuesOf({ path: join(dir, 'list.yaml') })[0], { path: '', message: 'a list is not a mapping' });
});

t.test('environment overrides are typed by the schema', async (t) => {
  const { config, origins } = loadConfig({
    ...BASE,
    env: {
      LVUNET_MQTT_URL: 'mqtts://broker.local:8883',
      LVUNET_DEVICE_ID: 'cart-env',
      LVUNET_INFERENCE_THRESHOLD: '0.35',
      LVUNET_PUBLISH_CONTOURS: 'true',
      LVUNET_PUBLISH_EVERY_N: '4',
      LVUNET_MQTT_QUEUE_MAX_MESSAGES: '500',
      LVUNET_MQTT_TLS_REJECT_UNAUTHORIZED: '0',
      LVUNET_MQTT_USERNAME: 'null',
      LVUNET_RUNTIME_PROVIDERS: '[{name: CUDA, options: {device_id: "1"}}, {name: CPU}]',
      LVUNET_SOURCE_CONTROLS: '{"brightness": 100}',
      LVUNET_STATE_DIR: 'state',
      LVUNET_ORT_LIBRARY: '/not/a/config/key', // belongs to the native loader, not to the config
      LVUNET_DEBUG: '1',
    },
  });
  t.equal(config.mqtt.url, 'mqtts://broker.local:8883');
  t.equal(config.device.id, 'cart-env');
  t.equal(config.inference.threshold, 0.35);
  t.equal(config.publish.contours, true);
  t.equal(config.publish.every_n, 4);
  t.equal(config.mqtt.queue.max_messages, 500);
  t.equal(config.mqtt.tls.reject_unauthorized, false);
  t.equal(config.mqtt.username, null);
  t.same(config.runtime.providers, [
    { name: 'CUDA', options: { device_id: '1' } },
    { name: 'CPU', options: {} },
  ]);
  t.same(config.source.controls, { brightness: 100 });
  t.equal(config.state_dir, '/srv/state', 'relative env paths resolve from the working directory');
  t.equal(origins['inference.threshold'], 'LVUNET_INFERENCE_THRESHOLD');
  t.equal(loadConfig({ ...BASE, env: { LVUNET_MQTT_URL: '' } }).config.mqtt.url, null, 'empty variable: null');
});

t.test('bad environment values name the variable', async (t) => {
  const issues = issuesOf({
    env: {
      LVUNET_INFERENCE_THRESHOLD: 'abc',
      LVUNET_PUBLISH_EVERY_N: '2.5',
      LVUNET_PUBLISH_RLE: 'maybe',
      LVUNET_MODEL_PRECISION: 'fp64',
      LVUNET_RUNTIME_PROVIDERS: '[{name: CUDA',
      LVUNET_MQTT_ULR: 'mqtt://x',
    },
  });
  const text = issues.map(formatIssue);
  t.equal(text.length, 6, 'every bad variable reported at once');
  t.same(text.filter((_, i) => i !== 1), [
    'LVUNET_MODEL_PRECISION: model.precision: "fp64" is not one of fp32, fp16, int8',
    'LVUNET_INFERENCE_THRESHOLD: inference.threshold: "abc" is not a number',
    'LVUNET_PUBLISH_RLE: publish.rle: "maybe" is not a boolean (true or false)',
    'LVUNET_PUBLISH_EVERY_N: publish.every_n: 2.5 is not an integer',
    'LVUNET_MQTT_ULR: is not a configuration variable (did you mean LVUNET_MQTT_URL?)',
  ]);
  t.match(issues[1], { source: 'LVUNET_RUNTIME_PROVIDERS', path: 'runtime.providers', kind: 'parse' });
  t.match(text[1], /^LVUNET_RUNTIME_PROVIDERS: runtime\.providers: cannot parse "\[\{name: CUDA": /);
});

t.test('precedence: defaults < file < environment < CLI', async (t) => {
  const dir = t.testdir({ 'c.yaml': 'inference:\n  threshold: 0.2\n  min_area_px: 10\npublish:\n  every_n: 2\ntelemetry:\n  interval_s: 5\n' });
  const path = join(dir, 'c.yaml');
  const env = { LVUNET_INFERENCE_THRESHOLD: '0.3', LVUNET_INFERENCE_MIN_AREA_PX: '20' };
  const loaded = loadConfig({ ...BASE, path, env, cli: { 'inference.threshold': 0.4 } });
  const c = loaded.config;
  t.equal(c.inference.threshold, 0.4, 'CLI beats environment');
  t.equal(c.inference.min_area_px, 20, 'environment beats file');
  t.equal(c.publish.every_n, 2, 'file beats default');
  t.equal(c.inference.fit, 'stretch', 'default where nobody says');
  t.same(
    [loaded.origins['inference.threshold'], loaded.origins['inference.min_area_px'], loaded.origins['publish.every_n']],
    ['cli', 'LVUNET_INFERENCE_MIN_AREA_PX', path],
  );
  const nested = loadConfig({ ...BASE, path, env, cli: { inference: { threshold: 0.45 }, 'inference.fit': 'letterbox' } });
  t.equal(nested.config.inference.threshold, 0.45);
  t.equal(nested.config.inference.fit, 'letterbox');
  t.equal(nested.config.inference.min_area_px, 20, 'a nested CLI object merges, it does not replace the section');
});

t.test('--set assignments are typed like environment variables', async (t) => {
  const o = overridesFromAssignments(['inference.threshold=0.6', 'publish.rle=false', 'mqtt.url=null', 'inference.treshold=1']);
  t.same(o, { 'inference.threshold': 0.6, 'publish.rle': false, 'mqtt.url': null, 'inference.treshold': '1' });
  const [typo] = issuesOf({ cli: o });
  t.equal(formatIssue(typo), 'cli: inference.treshold: unknown key (did you mean "threshold"?)');
  t.throws(() => overridesFromAssignments(['threshold']), /is not key=value/);
});

t.test('last-known-good: saved after start, used loudly when the file breaks', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'inference:\n  threshold: 0.3\nmqtt:\n  password: s3cret\nstate_dir: state\n' });
  const path = join(dir, 'config.yaml');
  const good = loadConfig({ ...BASE, path, lastKnownGood: true });
  const saved = saveLastKnownGood(good.config.state_dir, good);
  t.equal(saved, join(dir, 'state', LAST_KNOWN_GOOD_FILE));
  t.equal(statSync(saved).mode & 0o777, 0o600, 'readable by the service only: it may hold the broker password');

  writeFileSync(path, 'inference:\n  threshold: 1.7\nstate_dir: state\n');
  t.throws(() => loadConfig({ ...BASE, path }), ConfigError, 'without lastKnownGood the error is thrown');

  const env = { LVUNET_PUBLISH_EVERY_N: '3' };
  const fallback = loadConfig({ ...BASE, path, env, lastKnownGood: true });
  t.equal(fallback.origin, 'last-known-good');
  t.equal(fallback.config.inference.threshold, 0.3, 'the saved config runs');
  t.equal(fallback.config.publish.every_n, 3, 'environment still applies on top');
  t.equal(fallback.file, path, 'still watching the real file');
  const [event] = fallback.events;
  t.match(event, { type: 'config.fallback', level: 'error', file: path, lastKnownGood: { path: saved, fileSha256: good.fileSha256 } });
  if (event.type !== 'config.fallback') throw new Error('unreachable');
  t.match(event.issues[0], { path: 'inference.threshold', kind: 'range' });
  t.match(event.message, /^CONFIG REJECTED: .*config\.yaml has 1 problem\(s\); running the last-known-good config saved/);
  t.match(event.message, /inference\.threshold: 1\.7 is not in \[0, 1\]/);

  writeFileSync(path, 'state_dir: "state"   # kept\ninference: [\n');
  const parseFallback = loadConfig({ ...BASE, path, lastKnownGood: true });
  t.equal(parseFallback.origin, 'last-known-good', 'a file that does not parse falls back too, its state_dir found by a line scan');
  const [parseEvent] = parseFallback.events;
  t.match(parseEvent, { type: 'config.fallback' });
  if (parseEvent.type === 'config.fallback') t.match(parseEvent.issues[0], { kind: 'parse', line: 3 });
});

t.test('last-known-good: stateDir option, missing copy, bad overrides are not masked', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'publish:\n  every_n: 5\n', state: {}, empty: {} });
  const path = join(dir, 'config.yaml');
  const stateDir = join(dir, 'state');
  saveLastKnownGood(stateDir, loadConfig({ ...BASE, path }));
  writeFileSync(path, 'publish:\n  every_n: 0\n');
  t.equal(loadConfig({ ...BASE, path, lastKnownGood: { stateDir } }).config.publish.every_n, 5);

  try {
    loadConfig({ ...BASE, path, lastKnownGood: { stateDir: join(dir, 'empty') } });
    t.fail('should throw');
  } catch (err) {
    t.type(err, ConfigError);
    t.match((err as Error).message, /is invalid and no usable last-known-good config was found/);
    t.match((err as Error).message, /publish\.every_n: 0 is not >= 1/);
  }

  // A bad variable is the operator's mistake of the moment: the saved file would not fix it.
  const issues = issuesOf({ path, lastKnownGood: { stateDir }, env: { LVUNET_INFERENCE_THRESHOLD: 'x' } });
  t.same(issues.map((i) => i.source).sort(), ['LVUNET_INFERENCE_THRESHOLD', path].sort());

  writeFileSync(join(stateDir, LAST_KNOWN_GOOD_FILE), '{"format": "something else"}');
  t.throws(() => loadConfig({ ...BASE, path, lastKnownGood: { stateDir } }), /not a lvunet-edge\/last-known-good@1 file/);
  t.ok(existsSync(join(stateDir, LAST_KNOWN_GOOD_FILE)));
  t.ok(readFileSync(path, 'utf8').includes('every_n: 0'), 'the broken file is never rewritten');
});

t.test('unreadable config file falls back too', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async (t) => {
  const dir = t.testdir({ 'c.yaml': 'publish:\n  every_n: 2\n', state: {} });
  const path = join(dir, 'c.yaml');
  const stateDir = join(dir, 'state');
  saveLastKnownGood(stateDir, loadConfig({ ...BASE, path }));
  chmodSync(path, 0o000);
  t.equal(loadConfig({ ...BASE, path, lastKnownGood: { stateDir } }).config.publish.every_n, 2);
  chmodSync(path, 0o644);
});

t.test('the shipped example config validates', async (t) => {
  const path = join(REPO_ROOT, 'deploy', 'config', 'lvunet-edge.yaml');
  const loaded = loadConfig({ ...BASE, path });
  const c = loaded.config;
  t.equal(c.device.id, 'cart-or-07');
  t.equal(c.runtime.profile, 'jetson-tensorrt-fp16');
  t.equal(loaded.providersFrom, 'profile');
  t.same(
    c.runtime.providers?.map((p) => p.name),
    ['TensorRT', 'CUDA', 'CPU'],
  );
  t.equal(c.model.precision, 'fp16');
  t.same(loaded.events, [], 'model precision matches the profile');
  t.equal(c.mqtt.url, 'mqtts://fleet-broker.hospital.example:8883');
  t.equal(c.mqtt.queue.dir, '/var/lib/lvunet-edge/mqtt-queue');
  t.equal(c.inference.fit, 'letterbox');
  t.same(c.source.controls, { brightness: 128, power_line_frequency: 1 });
  const text = readFileSync(path, 'utf8');
  for (const section of ['device', 'model', 'runtime', 'source', 'inference', 'publish', 'mqtt', 'telemetry', 'supervisor', 'state_dir']) {
    t.match(text, new RegExp(`^${section}:`, 'm'), `example shows ${section}`);
  }
});

t.test('warnings: model file name vs precision; redaction for logs', async (t) => {
  const loaded = loadConfig({ ...BASE, cli: { model: { path: '/m/lvunet.int8.onnx', precision: 'fp32' } } });
  t.same(loaded.events.map((e) => e.type), ['config.warning']);
  t.match(loaded.events[0].message, /model\.precision is fp32 but model\.path names a int8 file/);
  const secret = loadConfig({ ...BASE, env: { LVUNET_MQTT_USERNAME: 'cart', LVUNET_MQTT_PASSWORD: 's3cret' } }).config;
  const shown = redactConfig(secret);
  t.equal(shown.mqtt.password, '***');
  t.equal(shown.mqtt.username, 'cart');
  t.equal(secret.mqtt.password, 's3cret', 'the original is untouched');
  t.equal(redactConfig(loadConfig(BASE).config).mqtt.password, null);
});
