import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  ConfigError,
  PROVIDER_NAMES,
  defaultProfilesDir,
  engineCacheDir,
  formatIssue,
  listProfiles,
  loadConfig,
  readProfileFile,
  sessionOptionsFromConfig,
  sha256File,
  type ConfigIssue,
  type LoadOptions,
} from '../../src/config/index.js';
import { normalizeSessionOptions } from '../../src/runtime/native/runtime.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { same } from '../helpers/same.js';

const BASE: LoadOptions = { env: {}, hostname: 'cart-1', homedir: '/home/op', cwd: '/srv' };
const SHA = '0123456789abcdef'.repeat(4);
const SHIPPED = ['acl', 'cpu', 'cuda', 'jetson-tensorrt-fp16', 'jetson-tensorrt-int8', 'openvino', 'qnn-htp', 'vsinpu'];

function issuesOf(options: LoadOptions): ConfigIssue[] {
  try {
    loadConfig({ ...BASE, ...options });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('every shipped profile validates, and the set is the documented one', async (t) => {
  const dir = defaultProfilesDir();
  t.equal(dir, join(REPO_ROOT, 'deploy', 'profiles'));
  t.same(listProfiles(), SHIPPED);
  t.same(readdirSync(dir).filter((f) => !f.endsWith('.yaml')), ['README.md'], 'nothing else in the folder');
  for (const name of SHIPPED) {
    const { profile, issues } = readProfileFile(join(dir, `${name}.yaml`));
    same(t, issues.map(formatIssue), [], `${name} has no problems`);
    t.equal(profile?.profile.name, name);
    const providers = profile?.profile.providers ?? [];
    t.equal(providers[providers.length - 1]?.name, 'CPU', `${name} ends with CPU`);
    for (const p of providers) t.ok((PROVIDER_NAMES as readonly string[]).includes(p.name));
    // The options must survive the native runtime's own normalisation (strings only, known shape).
    const loaded = loadConfig({ ...BASE, cli: { runtime: { profile: name }, model: { precision: profile?.profile.expects_precision, path: `/m/lvunet.${profile?.profile.expects_precision}.onnx` } } });
    t.same(loaded.events, [], `${name}: no precision warning when the model matches`);
    const options = sessionOptionsFromConfig(loaded.config, { modelSha256: SHA, ortVersion: '1.30.0' });
    t.doesNotThrow(() => normalizeSessionOptions(options), `${name}: session options are acceptable to the native runtime`);
    t.notMatch(JSON.stringify(options), /\$\{/, `${name}: every placeholder filled`);
  }
});

t.test('what each profile asks of ONNX Runtime', async (t) => {
  const providers = (name: string) => loadConfig({ ...BASE, cli: { 'runtime.profile': name } }).config.runtime.providers ?? [];
  const fp16 = providers('jetson-tensorrt-fp16');
  same(t, fp16.map((p) => p.name), ['TensorRT', 'CUDA', 'CPU']);
  t.match(fp16[0].options, {
    trt_fp16_enable: '1',
    trt_engine_cache_enable: '1',
    trt_engine_cache_path: '${engine_cache_dir}',
  });
  t.match(providers('jetson-tensorrt-int8')[0].options, { trt_int8_enable: '1', trt_engine_cache_enable: '1' });
  t.same(providers('cuda').map((p) => p.name), ['CUDA', 'CPU']);
  t.match(providers('qnn-htp')[0], { name: 'QNN', options: { backend_path: 'libQnnHtp.so' } });
  t.equal(providers('vsinpu')[0].name, 'VSINPU');
  t.equal(providers('acl')[0].name, 'ACL');
  t.equal(providers('openvino')[0].name, 'OpenVINO');
  t.same(providers('cpu'), [{ name: 'CPU', options: {} }]);
});

t.test('session options: threads, strict, placeholders and the engine cache path', async (t) => {
  const loaded = loadConfig({
    ...BASE,
    cli: { runtime: { profile: 'jetson-tensorrt-fp16', threads: 2, strict: true }, model: { precision: 'fp16' }, state_dir: '/var/lib/lvunet-edge' },
  });
  const options = sessionOptionsFromConfig(loaded.config, { modelSha256: SHA, ortVersion: '1.30.0' });
  const cache = '/var/lib/lvunet-edge/engine-cache/0123456789abcdef-tensorrt-ort1.30.0';
  t.same(options, {
    intraOpThreads: 2,
    graphOptimization: 'all',
    strict: true,
    providers: [
      {
        name: 'TensorRT',
        options: {
          device_id: '0',
          trt_fp16_enable: '1',
          trt_engine_cache_enable: '1',
          trt_engine_cache_path: cache,
          trt_timing_cache_enable: '1',
          trt_timing_cache_path: cache,
          trt_max_workspace_size: '1073741824',
        },
      },
      { name: 'CUDA', options: { device_id: '0', cudnn_conv_algo_search: 'HEURISTIC' } },
      { name: 'CPU', options: {} },
    ],
  });
  t.equal(engineCacheDir({ stateDir: '/s', modelSha256: SHA.toUpperCase(), provider: 'OpenVINO', ortVersion: '1.20.0+jetpack 6' }), '/s/engine-cache/0123456789abcdef-openvino-ort1.20.0_jetpack_6');
  t.throws(() => engineCacheDir({ stateDir: '/s', modelSha256: 'nothex', provider: 'x', ortVersion: '1' }), /must be hex/);
  t.throws(() => sessionOptionsFromConfig(loaded.config, { ortVersion: '1.30.0' }), /runtime\.providers\[0\]\.options\.trt_engine_cache_path uses \$\{engine_cache_dir\}: pass modelSha256/);
  t.throws(() => sessionOptionsFromConfig({ ...loaded.config, runtime: { ...loaded.config.runtime, providers: null } }), /pass a config returned by loadConfig/);
});

t.test('explicit providers win over the profile; option values become strings', async (t) => {
  const loaded = loadConfig({
    ...BASE,
    cli: {
      runtime: {
        profile: 'jetson-tensorrt-fp16',
        providers: [{ name: 'CUDA', options: { device_id: 1, do_copy_in_default_stream: true, gpu_mem_limit: '${state_dir}' } }, { name: 'CPU' }],
      },
    },
  });
  t.equal(loaded.providersFrom, 'config');
  t.same(loaded.events, [], 'no precision warning: the profile is not in use');
  t.same(sessionOptionsFromConfig(loaded.config).providers, [
    { name: 'CUDA', options: { device_id: '1', do_copy_in_default_stream: '1', gpu_mem_limit: loaded.config.state_dir } },
    { name: 'CPU', options: {} },
  ]);
  const [bad] = issuesOf({ cli: { runtime: { providers: [{ name: 'CUDA', options: { p: '${state_dri}' } }] } } });
  t.match(bad, { source: 'cli', path: 'runtime.providers[0].options.p' });
  t.match(bad.message, /unknown placeholder \$\{state_dri\} \(did you mean \$\{state_dir\}\?\)/);
});

t.test('profile choice: unknown names, custom files, precision mismatch', async (t) => {
  const [unknown] = issuesOf({ env: { LVUNET_RUNTIME_PROFILE: 'jetson-tensorrt-f16' } });
  t.match(unknown, { source: 'LVUNET_RUNTIME_PROFILE', path: 'runtime.profile', kind: 'enum' });
  t.match(unknown.message, /is not a shipped profile \(did you mean "jetson-tensorrt-fp16"\?\); known: acl, cpu/);

  const dir = t.testdir({
    'config.yaml': 'runtime:\n  profile: profiles/my-board.yaml\n',
    profiles: {
      'my-board.yaml': 'name: my-board\nexpects_precision: int8\nproviders:\n  - name: XNNPACK\n    options: {intra_op_num_threads: 2}\n  - name: CPU\n',
      'broken.yaml': 'name: other\nexpects_precision: fp8\nproviders:\n  - name: CPU\n    options: {a: 1}\n  - name: CUDA\n    options:\n      x: ${nope}\n',
    },
  });
  const custom = loadConfig({ ...BASE, path: join(dir, 'config.yaml') });
  t.equal(custom.profile.file, join(dir, 'profiles', 'my-board.yaml'), 'relative profile path from the config folder');
  t.same(custom.config.runtime.providers?.map((p) => p.name), ['XNNPACK', 'CPU']);
  const [warning] = custom.events;
  t.match(warning, { type: 'config.warning', level: 'warn', key: 'model.precision' });
  t.match(warning.message, /model\.precision is fp32 but profile my-board expects int8/);

  const broken = join(dir, 'profiles', 'broken.yaml');
  const issues = issuesOf({ cli: { runtime: { profile: broken } } });
  t.same(
    issues.map((i) => [i.source, i.path, i.kind]),
    [
      [broken, 'expects_precision', 'enum'],
      [broken, 'providers[0].options', 'constraint'],
    ],
    'schema problems first (the rest is checked once the file is well-formed)',
  );
  t.match(issuesOf({ cli: { runtime: { profile: join(dir, 'nowhere.yaml') } } })[0].message, /does not exist/);

  const named = t.testdir({ 'x.yaml': 'name: y\nexpects_precision: fp32\nproviders:\n  - name: CUDA\n    options: {p: "${nope}"}\n  - name: CPU\n  - name: CUDA\n' });
  const r = readProfileFile(join(named, 'x.yaml'));
  t.same(
    r.issues.map((i) => [i.path, i.kind]),
    [
      ['name', 'constraint'],
      ['providers[0].options.p', 'format'],
      ['providers[1]', 'constraint'],
      ['providers[2]', 'constraint'],
    ],
  );
  t.equal(r.issues[1].line, 5, 'placeholder problems point at their line');
});

t.test('sha256File hashes the model file', async (t) => {
  const dir = t.testdir({ 'm.onnx': 'abc' });
  t.equal(sha256File(join(dir, 'm.onnx')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
