#!/usr/bin/env node
// `npm run test:v4l2`: the project's V4L2 capture path against a real kernel driver. Boots Debian's
// own kernel (linux-image-amd64) under qemu-system-x86_64 (TCG) with a small initramfs holding
// busybox, the host's node and the kernel's vivid/videobuf2/virtio/9p modules; the guest sees this
// checkout read-only over virtio-9p and writes its report and recorded frames to a second 9p share.
// test/v4l2/guest.mjs runs in the guest (formats, test-pattern content, controls, stream off/on,
// disconnect → reopen, a 300-frame leak check, `frames record`); this script checks its report and
// runs the shipped model on the recorded frames here, where inference is not 1000x slower.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = realpathSync(join(fileURLToPath(new URL('.', import.meta.url)), '..'));
const cacheDir = join(root, '.cache', 'v4l2-vm');
/** Debian packages the test needs; CI installs them (.ci/run). */
const APT_PACKAGES = ['qemu-system-x86', 'linux-image-amd64', 'busybox-static', 'cpio'];
/** The whole guest run (boot, node start under TCG, every check) must end within this. */
const VM_TIMEOUT_S = Number(process.env.LVUNET_V4L2_VM_TIMEOUT_S ?? 420);
/** The guest test's own limit, inside the VM's: leaves time to write the report and power off. */
const GUEST_TIMEOUT_S = VM_TIMEOUT_S - 60;

const fail = (msg) => {
  console.error(`test:v4l2: FAIL: ${msg}`);
  process.exit(1);
};
const log = (msg) => console.log(`test:v4l2: ${msg}`);
const installHint = (what) => `${what}: install the Debian packages with \`sudo apt-get install ${APT_PACKAGES.join(' ')}\``;

// ---------------------------------------------------------------------------------------------
// What the VM needs from the host.

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function findKernel() {
  const wanted = process.env.LVUNET_V4L2_KERNEL;
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((n) => /^vmlinuz-.+-amd64$/.test(n)) : [];
  // Newest first, by the version in the name: the running kernel may be a container host's, not Debian's.
  kernels.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  for (const name of wanted ? [wanted] : kernels) {
    const version = name.replace(/^vmlinuz-/, '');
    const modules = join('/lib/modules', version);
    if (existsSync(join('/boot', name)) && existsSync(join(modules, 'modules.dep'))) return { image: join('/boot', name), version, modules };
  }
  return undefined;
}

const qemu = which('qemu-system-x86_64');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const cpio = which('cpio');
const kernel = findKernel();
const missing = [
  ...(qemu ? [] : ['qemu-system-x86_64 (qemu-system-x86)']),
  ...(kernel ? [] : ['a Debian kernel with its modules: /boot/vmlinuz-*-amd64 and /lib/modules/<version>/ (linux-image-amd64)']),
  ...(busybox ? [] : ['busybox (busybox-static)']),
  ...(cpio ? [] : ['cpio']),
];
if (missing.length > 0) fail(installHint(`missing ${missing.join(', ')}`));
// ldd says "not a dynamic executable" (and fails) for busybox-static; the dynamic busybox package
// would need its libraries in the initramfs.
if (spawnSync('ldd', [busybox], { encoding: 'utf8' }).status === 0) {
  fail(installHint(`${busybox} is dynamically linked; the initramfs needs busybox-static`));
}

// ---------------------------------------------------------------------------------------------
// The initramfs: busybox, node and its libraries, the modules, the init script. Rebuilt when any
// input changes (kernel, node, busybox, this script, the init script).

/** Modules to load, with their parameters; dependencies are resolved from modules.dep. */
const MODULES = [
  ['virtio_pci', ''],
  ['9pnet_virtio', ''],
  ['9p', ''],
  // One vivid instance with a video capture node only (node_types bit 0): /dev/video0. Its inputs
  // (webcam, TV, S-Video, HDMI) and error-injection controls (Disconnect) are vivid's defaults.
  ['vivid', 'n_devs=1 node_types=0x1'],
];

function moduleGraph(modulesDir) {
  const deps = new Map();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) deps.set(m[1], m[2].split(/\s+/).filter(Boolean));
  }
  return deps;
}

/** Module files in load order (dependencies first), each with its parameters. */
function resolveModules(modulesDir) {
  const deps = moduleGraph(modulesDir);
  const builtin = new Set(
    existsSync(join(modulesDir, 'modules.builtin'))
      ? readFileSync(join(modulesDir, 'modules.builtin'), 'utf8').split('\n').map((p) => moduleName(p)).filter(Boolean)
      : [],
  );
  const byName = new Map([...deps.keys()].map((p) => [moduleName(p), p]));
  const order = [];
  const seen = new Set();
  const visit = (path, params) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const d of deps.get(path) ?? []) visit(d, '');
    order.push({ path, params });
  };
  for (const [name, params] of MODULES) {
    const path = byName.get(name);
    if (path) visit(path, params);
    else if (!builtin.has(name)) fail(installHint(`kernel ${kernel.version} has no ${name} module in ${modulesDir}`));
  }
  return order;
}

function moduleName(path) {
  const base = path.split('/').pop() ?? '';
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** Shared libraries of an ELF file as ldd resolves them (absolute paths). */
function sharedLibraries(file) {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.status !== 0) fail(`ldd ${file} failed: ${r.stderr}`);
  const libs = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function fileKey(path) {
  const st = statSync(path);
  return `${path}:${st.size}:${st.mtimeMs}`;
}

function buildInitramfs() {
  const node = realpathSync(process.execPath);
  const addon = join(root, 'build', 'Release', 'lvunet_edge.node');
  // Libraries of node, of the addon and of onnxruntime-node's binding (the CLI imports it when it
  // starts); the node_modules copies themselves reach the guest over 9p.
  const ortDir = join(nodeModules, 'onnxruntime-node', 'bin');
  const ortBinaries = existsSync(ortDir)
    ? readdirSync(ortDir, { recursive: true })
        .map(String)
        .filter((p) => p.includes(`linux${'/'}x64${'/'}`) && /\.(node|so[.\d]*)$/.test(p))
        .map((p) => join(ortDir, p))
    : [];
  const libs = [...new Set([node, ...(existsSync(addon) ? [addon] : []), ...ortBinaries].flatMap(sharedLibraries))].filter(
    (lib) => !lib.startsWith(`${root}/`) && !lib.startsWith(`${nodeModules}/`),
  );
  const modules = resolveModules(kernel.modules);
  const initScript = join(root, 'test', 'v4l2', 'guest-init.sh');
  const key = createHash('sha256')
    .update(
      [kernel.image, ...modules.map((m) => `${fileKey(join(kernel.modules, m.path))}:${m.params}`), fileKey(node), fileKey(busybox), ...libs.map(fileKey)].join(
        '\n',
      ),
    )
    .update(readFileSync(initScript))
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest('hex')
    .slice(0, 16);
  const image = join(cacheDir, `initramfs-${key}.cpio`);
  if (existsSync(image)) return image;

  log(`building the initramfs (kernel ${kernel.version}, ${modules.length} modules, node ${process.version})`);
  rmSync(cacheDir, { recursive: true, force: true });
  const stage = join(cacheDir, 'stage');
  for (const d of ['bin', 'usr/bin', 'proc', 'sys', 'dev', 'tmp', 'out', 'modules', 'etc']) mkdirSync(join(stage, d), { recursive: true });
  copyFileSync(busybox, join(stage, 'bin', 'busybox'));
  copyFileSync(node, join(stage, 'usr', 'bin', 'node'));
  for (const lib of libs) {
    mkdirSync(join(stage, dirname(lib)), { recursive: true });
    copyFileSync(realpathSync(lib), join(stage, lib));
  }
  const order = [];
  for (const m of modules) {
    const name = `${moduleName(m.path)}.ko`;
    const src = join(kernel.modules, m.path);
    // busybox insmod takes plain ELF modules: compressed ones are unpacked here.
    const unpack = m.path.endsWith('.xz') ? ['xz', '-dc'] : m.path.endsWith('.zst') ? ['zstd', '-dc'] : m.path.endsWith('.gz') ? ['gzip', '-dc'] : undefined;
    if (unpack) {
      const r = spawnSync(unpack[0], [...unpack.slice(1), src], { maxBuffer: 1 << 28 });
      if (r.status !== 0) fail(`cannot unpack ${src} with ${unpack[0]} (apt-get install ${unpack[0] === 'xz' ? 'xz-utils' : unpack[0]}): ${r.stderr}`);
      writeFileSync(join(stage, 'modules', name), r.stdout);
    } else {
      copyFileSync(src, join(stage, 'modules', name));
    }
    order.push(`${name} ${m.params}`.trim());
  }
  writeFileSync(join(stage, 'modules', 'order'), `${order.join('\n')}\n`);
  copyFileSync(initScript, join(stage, 'init'));
  spawnSync('chmod', ['755', join(stage, 'init')]);
  // Uncompressed: the kernel unpacks it in well under a second even under TCG; gzip would cost seconds.
  const tmp = `${image}.tmp`;
  const r = spawnSync('sh', ['-c', `cd "${stage}" && find . -print | cpio -o -H newc --quiet > "${tmp}"`], { stdio: 'inherit' });
  if (r.status !== 0) fail('cpio failed to pack the initramfs');
  renameSync(tmp, image);
  rmSync(stage, { recursive: true, force: true });
  return image;
}

// ---------------------------------------------------------------------------------------------

const addon = join(root, 'build', 'Release', 'lvunet_edge.node');
if (!existsSync(addon)) fail(`no native addon at ${relative(root, addon)}: build it with \`npm run build:native\``);
if (!existsSync(join(root, 'dist', 'src', 'runtime', 'sources', 'v4l2', 'index.js'))) fail('no dist/: run `npm run build` first (npm run test:v4l2 does)');

const nodeModules = realpathSync(join(root, 'node_modules'));
const initramfs = buildInitramfs();
const out = mkdtempSync(join(tmpdir(), 'lvunet-v4l2-'));
const nodeModulesOutside = !nodeModules.startsWith(`${root}/`);
if (/\s/.test(root + nodeModules)) fail(`the checkout path must not contain spaces (${root}): it is passed on the kernel command line`);

const cmdline = [
  'console=ttyS0',
  'panic=-1',
  'loglevel=4',
  `LVUNET_REPO=${root}`,
  `LVUNET_TIMEOUT=${GUEST_TIMEOUT_S}`,
  ...(nodeModulesOutside ? [`LVUNET_MODULES_DIR=${nodeModules}`] : []),
].join(' ');
const qemuArgs = [
  '-accel', 'tcg',
  '-machine', 'q35',
  '-cpu', 'max',
  '-smp', process.env.LVUNET_V4L2_SMP ?? '2',
  '-m', '2048',
  '-nic', 'none',
  '-nographic',
  '-no-reboot',
  '-kernel', kernel.image,
  '-initrd', initramfs,
  '-append', cmdline,
  '-virtfs', `local,path=${root},mount_tag=repo,security_model=none,readonly=on`,
  '-virtfs', `local,path=${out},mount_tag=out,security_model=none`,
  ...(nodeModulesOutside ? ['-virtfs', `local,path=${nodeModules},mount_tag=nodemodules,security_model=none,readonly=on`] : []),
];

log(`booting ${kernel.image} under qemu TCG (hard limit ${VM_TIMEOUT_S} s); guest output follows`);
const started = performance.now();
const vm = spawn(qemu, qemuArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
// Never leave a VM behind, whatever ends this script.
process.on('exit', () => vm.exitCode === null && vm.signalCode === null && vm.kill('SIGKILL'));
let consoleLog = '';
const onData = (chunk) => {
  const text = chunk.toString();
  consoleLog += text;
  process.stdout.write(text);
};
vm.stdout.on('data', onData);
vm.stderr.on('data', onData);
const killer = setTimeout(() => {
  console.error(`test:v4l2: the VM ran past ${VM_TIMEOUT_S} s: killing it`);
  vm.kill('SIGKILL');
}, VM_TIMEOUT_S * 1000);
const vmExit = await new Promise((resolve) => vm.once('exit', (code, signal) => resolve({ code, signal })));
clearTimeout(killer);
const vmSeconds = (performance.now() - started) / 1000;
writeFileSync(join(out, 'console.log'), consoleLog);
log(`VM finished in ${vmSeconds.toFixed(1)} s (${vmExit.signal ?? `exit ${vmExit.code}`}); console log: ${join(out, 'console.log')}`);

const exitFile = join(out, 'exit-code');
if (!existsSync(exitFile)) fail(`the guest wrote no exit code (did it boot? see ${join(out, 'console.log')})`);
const guestExit = Number(readFileSync(exitFile, 'utf8').trim());
const reportFile = join(out, 'report.json');
if (!existsSync(reportFile)) fail(`the guest test exited ${guestExit} without a report`);
const report = JSON.parse(readFileSync(reportFile, 'utf8'));
console.log(JSON.stringify(report, null, 2));
const failedChecks = (report.checks ?? []).filter((c) => !c.ok);
if (guestExit !== 0 || failedChecks.length > 0 || (report.checks ?? []).length === 0) {
  fail(`the guest test exited ${guestExit}; failed checks: ${failedChecks.map((c) => `${c.name}: ${c.detail}`).join('; ') || 'none reported'}`);
}

// The recorded frames through the shipped model here: one result per recorded frame, in order,
// each a valid result@1 for a frame of the recorded size and format.
const { assertResultV1 } = await import(join(root, 'dist', 'src', 'runtime', 'sinks', 'result.js'));
const model = join(root, 'models', 'lvunet-kvasir');
if (!existsSync(join(model, 'manifest.json'))) fail(`no shipped model at ${relative(root, model)}`);
const recordings = report.measurements?.recordings ?? [];
if (recordings.length === 0) fail('the guest recorded no frames');
for (const rec of recordings) {
  const file = join(out, rec.file);
  const results = join(out, `${rec.file}.results.jsonl`);
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [join(root, 'dist', 'src', 'cli', 'main.js'), 'run', '--in-process', '--model', model, '--source', `file:${file}`, '--sink', `jsonl:${results}`, '--threads', '1'],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  );
  if (r.status !== 0) fail(`run on ${rec.file} exited ${r.status ?? r.signal}: ${r.stderr}`);
  const lines = readFileSync(results, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const [, w, h] = /(\d+)x(\d+)/.exec(rec.file).map(Number);
  const format = rec.file.endsWith('.nv12') ? 'NV12' : 'YUYV';
  if (lines.length !== rec.frames) fail(`${rec.file}: ${lines.length} results for ${rec.frames} recorded frames`);
  lines.forEach((res, i) => {
    assertResultV1(res);
    if (res.frame.seq !== i) fail(`${rec.file}: result ${i} is for frame ${res.frame.seq}`);
    if (res.frame.width !== w || res.frame.height !== h || res.frame.format !== format) {
      fail(`${rec.file}: result ${i} is for a ${res.frame.width}x${res.frame.height} ${res.frame.format} frame`);
    }
    if (!(res.coverage >= 0 && res.coverage <= 1)) fail(`${rec.file}: result ${i} has coverage ${res.coverage}`);
  });
  log(`ok - model on ${rec.file} (recorded in the guest): ${lines.length}/${rec.frames} results, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
log(`PASS: ${report.checks.length} guest checks, ${recordings.length} recordings inferred here (VM ${vmSeconds.toFixed(1)} s; output in ${out})`);
