/**
 * deploy/containers/ cannot be built here (no Docker engine), so this checks what can go wrong
 * without one: malformed instructions, COPY sources that do not exist or are ignored, stages used
 * before they are defined, a root runtime user, dev dependencies in the shipped node_modules,
 * environment variables the runtime does not know, and compose references to missing files.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

import { REPO_ROOT } from '../helpers/paths.js';

const DIR = join(REPO_ROOT, 'deploy', 'containers');
const TARGETS = ['x64', 'arm64', 'jetson'] as const;
const INSTALL_SCRIPT = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.install;
const INSTRUCTIONS = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped (Dockerfile syntax, simplified). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === undefined && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    // A comment line inside a continued instruction is dropped, as Docker does.
    if (pending !== undefined && line.trimStart().startsWith('#')) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1) : line;
    pending = pending ?? { parts: [], line: i + 1 };
    pending.parts.push(body.trim());
    if (!continued) {
      const joined = pending.parts.join(' ');
      const m = /^(\S+)\s*(.*)$/.exec(joined);
      out.push({ keyword: m?.[1] ?? '', args: m?.[2] ?? '', line: pending.line });
      pending = undefined;
    }
  });
  if (pending !== undefined) out.push({ keyword: '<unterminated continuation>', args: '', line: pending.line });
  return out;
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--platform='));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ base: words[0], name: as >= 0 ? words[as + 1] : undefined, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

/** Flags (--from=x, --chown=y) and paths of a COPY; the last path is the destination. */
function copyParts(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [k, v] = (words.shift() as string).slice(2).split('=');
    flags[k] = v ?? '';
  }
  return { flags, sources: words.slice(0, -1), dest: words[words.length - 1] };
}

/** `KEY=value` pairs of an ENV instruction (values here never contain spaces). */
function envPairs(args: string): Record<string, string> {
  return Object.fromEntries(args.split(/\s+/).filter((w) => w.includes('=')).map((w) => w.split('=', 2) as [string, string]));
}

function ignoredTopLevel(): string[] {
  return readFileSync(join(DIR, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.includes('*'));
}

/** LVUNET_* variables the runtime reads: the config table in deploy/config/README.md, plus the loader's own. */
function knownVariables(): Set<string> {
  const table = readFileSync(join(REPO_ROOT, 'deploy', 'config', 'README.md'), 'utf8');
  const vars = new Set([...table.matchAll(/`(LVUNET_[A-Z0-9_]+)`/g)].map((m) => m[1]));
  for (const v of ['LVUNET_EDGE_NATIVE', 'LVUNET_ORT_LIBRARY', 'LVUNET_EDGE_SKIP_NATIVE', 'LVUNET_EDGE_BUILD_FROM_SOURCE', 'LVUNET_EDGE_COMMIT']) vars.add(v);
  return vars;
}

for (const target of TARGETS) {
  t.test(`Dockerfile.${target}`, async (t) => {
    const text = readFileSync(join(DIR, `Dockerfile.${target}`), 'utf8');
    const instructions = parseDockerfile(text);
    for (const ins of instructions) t.ok(INSTRUCTIONS.has(ins.keyword), `line ${ins.line}: ${ins.keyword} is a Dockerfile instruction`);
    t.equal(instructions.find((i) => i.keyword !== 'ARG')?.keyword, 'FROM', 'only ARG may precede the first FROM');

    const stages = stagesOf(instructions);
    const names = stages.map((s) => s.name).filter((n): n is string => n !== undefined);
    t.same(names, [...new Set(names)], 'stage names are unique');
    const ignored = ignoredTopLevel();
    stages.forEach((stage, index) => {
      for (const ins of stage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
        t.equal(ins.keyword, 'COPY', `line ${ins.line}: COPY, not ADD`);
        const { flags, sources } = copyParts(ins.args);
        t.ok(sources.length > 0, `line ${ins.line}: COPY has a source and a destination`);
        if (flags.from !== undefined) {
          t.ok(names.slice(0, index).includes(flags.from), `line ${ins.line}: --from=${flags.from} is an earlier stage`);
          continue;
        }
        for (const src of sources) {
          t.ok(existsSync(join(REPO_ROOT, src)), `line ${ins.line}: ${src} exists in the repository`);
          t.notOk(ignored.includes(src.replace(/^\.\//, '').split('/')[0]), `line ${ins.line}: ${src} is not excluded by .dockerignore`);
        }
      }
      const from = stage.base;
      t.ok(/^(\$\{?[A-Z_]+\}?|[a-z0-9./_-]+(:[\w.${}-]+)?|scratch)/.test(from) || names.includes(from), `stage ${stage.name ?? index}: FROM ${from}`);
    });

    const runtime = stages[stages.length - 1];
    const last = (kw: string): Instruction | undefined => runtime.instructions.filter((i) => i.keyword === kw).pop();
    const user = last('USER');
    t.ok(user, 'the runtime stage sets USER');
    t.notMatch(user?.args ?? 'root', /^(root|0)(:|$)/, 'and it is not root');

    // The shipped node_modules: npm ci in the runtime stage or in the tree it copies (/app).
    for (const ins of instructions.filter((i) => i.keyword === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args))) {
      const shipped = runtime.instructions.includes(ins) || /cd \/app\b/.test(ins.args);
      if (shipped) t.match(ins.args, /--omit=dev/, `line ${ins.line}: npm installs for the runtime omit dev dependencies`);
    }

    // npm ci runs package.json's install script; the file it runs must be in the tree at that point
    // (an earlier COPY in the same stage, or copied into /app by the same RUN).
    const installFile = /node (\S+)/.exec(INSTALL_SCRIPT)?.[1] ?? '';
    t.ok(installFile !== '' && existsSync(join(REPO_ROOT, installFile)), `the install script runs a file of the repository (${installFile})`);
    // Its whole folder: build.mjs imports its neighbours (prebuild.mjs).
    const installDir = installFile.slice(0, installFile.lastIndexOf('/'));
    const covers = (src: string): boolean => {
      const path = src.replace(/^\.\//, '').replace(/\/$/, '');
      return path !== '' && path !== '.' && (installDir === path || installDir.startsWith(`${path}/`));
    };
    for (const stage of stages) {
      stage.instructions.forEach((ins, i) => {
        if (ins.keyword !== 'RUN' || !/\bnpm (ci|install|i)\b/.test(ins.args) || /--ignore-scripts/.test(ins.args)) return;
        const copied = /cd \/app\b/.test(ins.args)
          ? /\bcp -a ((?:\S+ )+)\/app\/native\/?(?:\s|$)/.exec(ins.args.split(/cd \/app\b/)[0])?.[1].trim().split(' ').some(covers) === true
          : stage.instructions.slice(0, i).some((c) => c.keyword === 'COPY' && !copyParts(c.args).flags.from && copyParts(c.args).sources.some(covers));
        t.ok(copied, `line ${ins.line}: ${installDir}/ is in the tree before npm runs the install script`);
      });
    }

    for (const kw of ['ENTRYPOINT', 'CMD']) {
      const ins = last(kw);
      t.ok(ins, `runtime ${kw}`);
      const argv = JSON.parse(ins?.args ?? 'null') as unknown;
      t.ok(Array.isArray(argv) && argv.every((a) => typeof a === 'string'), `${kw} is an exec-form JSON array`);
    }
    const health = last('HEALTHCHECK');
    t.ok(health, 'HEALTHCHECK');
    const healthCmd = /\bCMD\s+(\[.*\])\s*$/.exec(health?.args ?? '');
    const healthArgv = JSON.parse(healthCmd?.[1] ?? '[]') as string[];
    t.same(healthArgv.slice(-3), ['/opt/lvunet-edge/dist/src/cli/main.js', 'doctor', '--json'], 'the health check is `doctor --json`');
    t.match(readFileSync(join(REPO_ROOT, 'src', 'cli', 'doctor-command.ts'), 'utf8'), /json: \{ type: 'boolean'/, 'doctor accepts --json');

    const env = Object.assign({}, ...runtime.instructions.filter((i) => i.keyword === 'ENV').map((i) => envPairs(i.args))) as Record<string, string>;
    const known = knownVariables();
    for (const name of Object.keys(env).filter((k) => k.startsWith('LVUNET_'))) t.ok(known.has(name), `${name} is a variable lvunet-edge reads`);
    const arch = target === 'x64' ? 'x64' : 'arm64';
    t.match(text, new RegExp(`prebuild\\.mjs --arch ${arch}\\b`), `the addon is built for ${arch}`);
    t.equal(env.LVUNET_EDGE_NATIVE, `/opt/lvunet-edge/prebuilds/linux-${arch}/lvunet_edge.node`, 'LVUNET_EDGE_NATIVE points at that prebuilt');
    t.ok(existsSync(join(DIR, `Dockerfile.${target}.dockerignore`)), 'BuildKit ignore file beside it');
    t.equal(readFileSync(join(DIR, `Dockerfile.${target}.dockerignore`), 'utf8'), readFileSync(join(DIR, '.dockerignore'), 'utf8'), 'equal to .dockerignore');

    if (target === 'jetson') {
      t.match(stages[0].base, /^\$\{L4T_IMAGE\}$/);
      t.match(text, /ARG L4T_IMAGE=nvcr\.io\/nvidia\/l4t-jetpack:r36\.\d+\.\d+/, 'an L4T JetPack r36 base');
      t.match(text, /--build_shared_lib/, 'ONNX Runtime is built as the C library');
      t.match(text, /--use_tensorrt/);
      t.match(text, /COPY --from=ort \/lib\/ \/opt\/onnxruntime\/lib\//);
      t.equal(env.LVUNET_ORT_LIBRARY, '/opt/onnxruntime/lib/libonnxruntime.so.1');
      t.ok(existsSync(join(REPO_ROOT, 'deploy', 'profiles', `${env.LVUNET_RUNTIME_PROFILE}.yaml`)), `profile ${env.LVUNET_RUNTIME_PROFILE} exists`);
    } else {
      t.match(runtime.base, /^node:\$\{NODE_VERSION\}-bookworm-slim$/, 'slim Debian bookworm runtime');
      t.match(text, /ARG NODE_VERSION=20\n/);
    }
  });
}

t.test('compose.yaml', async (t) => {
  const compose = parseYaml(readFileSync(join(DIR, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; build?: { context: string; dockerfile: string }; volumes?: string[]; profiles?: string[]; runtime?: string; environment?: Record<string, string> }>;
  };
  const services = compose.services;
  t.same(Object.keys(services).sort(), ['lvunet-edge', 'lvunet-edge-arm64', 'lvunet-edge-jetson', 'mosquitto']);
  t.equal(services['lvunet-edge-jetson'].runtime, 'nvidia');
  const known = knownVariables();
  for (const [name, svc] of Object.entries(services)) {
    if (svc.build) {
      const context = join(DIR, svc.build.context);
      t.equal(context, REPO_ROOT, `${name}: the build context is the repository root`);
      t.ok(existsSync(join(context, svc.build.dockerfile)), `${name}: ${svc.build.dockerfile} exists`);
      t.ok(svc.profiles && svc.profiles.length === 1, `${name}: started only with its --profile`);
      for (const v of Object.keys(svc.environment ?? {}).filter((k) => k.startsWith('LVUNET_'))) t.ok(known.has(v), `${name}: ${v} is a variable lvunet-edge reads`);
    }
    // Bind mounts of repository files must exist; ./config, ./pki and ./models are the user's.
    for (const volume of svc.volumes ?? []) {
      const source = volume.split(':')[0];
      if (source.startsWith('../')) t.ok(existsSync(join(DIR, source)), `${name}: ${source} exists`);
    }
  }
});
