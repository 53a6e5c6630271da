/**
 * The native V4L2 layer, without a camera: native/core/v4l2_device.cc compiled with warnings as
 * errors, a stand-alone C++ program checking its errors for a missing node and /dev/null, and the
 * N-API binding built into a throw-away addon and driven from TypeScript. Needs g++ (skipped with
 * a message otherwise). With LVUNET_V4L2_DEVICE=/dev/videoN it also streams from a real camera;
 * without it that test shows as todo, not as passed.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { V4l2Error } from '../../../../src/runtime/sources/v4l2/errors.js';
import { nativeOpener, nativeV4l2Class, type NativeV4l2DeviceClass } from '../../../../src/runtime/sources/v4l2/native-device.js';
import { V4l2Source } from '../../../../src/runtime/sources/v4l2/v4l2-source.js';
import { REPO_ROOT } from '../../../helpers/paths.js';

const CORE = join(REPO_ROOT, 'native', 'core');
const HERE = join(REPO_ROOT, 'test', 'runtime', 'sources', 'v4l2', 'native');
const CXX = process.env.CXX ?? 'g++';
const hasCompiler = spawnSync(CXX, ['--version'], { stdio: 'ignore' }).status === 0;

function compile(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(CXX, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => resolve({ code: -1, output: String(err) }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

t.test('native/core/v4l2_device does not depend on N-API', async (t) => {
  for (const file of ['v4l2_device.h', 'v4l2_device.cc']) {
    t.notMatch(readFileSync(join(CORE, file), 'utf8'), /#include\s*[<"](napi|node_api)\.h/, file);
  }
});

t.test('native V4L2 layer (g++)', { skip: hasCompiler ? false : `${CXX} not found: install a C++17 compiler (apt-get install g++) to build and run the native V4L2 checks` }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-v4l2-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const common = ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-I', CORE];
  const exe = join(dir, 'device_errors');
  // The three compiles are independent: start them together (the binding one takes the longest).
  const syntax = compile([...common, '-fsyntax-only', join(CORE, 'v4l2_device.cc')]);
  const program = compile([...common, '-O1', join(HERE, 'device_errors.cc'), join(CORE, 'v4l2_device.cc'), '-o', exe]);
  const req = createRequire(join(REPO_ROOT, 'package.json'));
  let includes: string[] | undefined;
  try {
    includes = [
      join(REPO_ROOT, (req('node-addon-api') as { include_dir: string }).include_dir),
      join(REPO_ROOT, 'node_modules', 'node-api-headers', 'include'),
    ];
    if (!existsSync(join(includes[1], 'node_api.h'))) includes = undefined;
  } catch {
    includes = undefined;
  }
  const addon = join(dir, 'v4l2_test.node');
  const binding = includes
    ? compile([
        '-std=c++17',
        '-O0',
        '-shared',
        '-fPIC',
        '-Wall',
        '-Wextra',
        '-DNAPI_VERSION=8',
        '-DNAPI_CPP_EXCEPTIONS',
        '-DNODE_ADDON_API_DISABLE_DEPRECATED',
        ...includes.flatMap((i) => ['-I', i]),
        '-I',
        CORE,
        join(HERE, 'binding_init_stub.cc'),
        join(REPO_ROOT, 'native', 'binding', 'v4l2_binding.cc'),
        join(CORE, 'v4l2_device.cc'),
        '-o',
        addon,
      ])
    : undefined;

  t.test('v4l2_device.cc compiles cleanly', async (t) => {
    const r = await syntax;
    t.equal(r.code, 0, r.output);
  });

  t.test('a missing node and /dev/null give errors naming path, call and errno', async (t) => {
    const built = await program;
    if (!t.equal(built.code, 0, built.output)) return;
    const run = spawnSync(exe, { encoding: 'utf8' });
    t.equal(run.status, 0, run.stdout + run.stderr);
    const lines = run.stdout.split('\n').filter((l) => /^(not )?ok /.test(l));
    t.ok(lines.length >= 12, `${lines.length} checks ran`);
    for (const line of lines) t.match(line, /^ok /);
    t.match(run.stdout, /open on '\/dev\/lvunet-no-such-video99' failed: No such file or directory \(ENOENT\)/);
    t.match(run.stdout, /'\/dev\/null' is not a V4L2 device: VIDIOC_QUERYCAP failed: Inappropriate ioctl for device \(ENOTTY\)/);
  });

  const noHeaders = binding ? false : 'node-addon-api / node-api-headers are not installed (npm ci)';
  t.test('the N-API binding builds, loads and reports errors through V4l2Error', { skip: noHeaders }, async (t) => {
    const built = await binding!;
    if (!t.equal(built.code, 0, built.output)) return;
    const cls: NativeV4l2DeviceClass = nativeV4l2Class(req(addon));
    const open = nativeOpener(cls);

    const missing = t.throws(() => open('/dev/lvunet-no-such-video99')) as V4l2Error;
    t.type(missing, V4l2Error);
    t.match(missing, { code: 'ERR_V4L2_OPEN', path: '/dev/lvunet-no-such-video99', syscall: 'open', errno: 'ENOENT' });
    t.match(missing.stack ?? '', /native\.test\.ts/, 'the JS stack of the call site is kept');

    t.throws(() => open('/dev/null'), { code: 'ERR_V4L2_NOT_V4L2', syscall: 'VIDIOC_QUERYCAP', errno: 'ENOTTY' });
    t.throws(() => new (cls as unknown as new (p: unknown) => unknown)(42), { name: 'TypeError', message: 'path must be a string' });
    t.throws(() => nativeV4l2Class({}), { code: 'ERR_NATIVE', message: /built without V4L2 support/ });

    const source = new V4l2Source({ path: '/dev/null', request: { width: 640, height: 480 }, openDevice: open });
    await t.rejects(source.next(), { code: 'ERR_V4L2_NOT_V4L2' }, 'a wrong node fails the first open at once');

    t.test('streams from a real camera (LVUNET_V4L2_DEVICE)', { todo: process.env.LVUNET_V4L2_DEVICE ? false : 'set LVUNET_V4L2_DEVICE=/dev/videoN on a machine with a camera (npm run test:v4l2 streams from the vivid driver under qemu)' }, async (t) => {
      const path = process.env.LVUNET_V4L2_DEVICE!;
      const camera = new V4l2Source({ path, request: { width: 640, height: 480, fps: 30 }, openDevice: open });
      const opened = await camera.open();
      t.comment(`${opened.card}: ${opened.negotiation.reasons.join('; ')} ${opened.warnings.join('; ')}`);
      for (let i = 0; i < 30; i++) {
        const f = await camera.next();
        t.ok(f && f.data.length > 0, `frame ${i}`);
      }
      await camera.close();
      t.comment(JSON.stringify(camera.stats()));
    });
  });
});
