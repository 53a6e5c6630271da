/**
 * Prebuilt native addons shipped in the package: `prebuilds/<platform>-<arch>/lvunet_edge.node`
 * with a `meta.json` beside it, written by native/scripts/prebuild.mjs. A prebuilt is used only
 * when its checksum matches and this machine's glibc and N-API are at least what it needs, so a
 * board with an older C library gets a message naming the versions instead of a dlopen error about
 * a missing `GLIBC_2.xx` symbol.
 *
 * native/scripts/prebuild.mjs (`findPrebuilt`) repeats this check in plain JavaScript for
 * `npm install`, which runs before any TypeScript is compiled; test/runtime/native/prebuilds.test.ts
 * keeps the two in agreement.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareVersions } from '../../util/versions.js';

export const PREBUILDS_DIR = 'prebuilds';
export const ADDON_FILE = 'lvunet_edge.node';
export const META_FILE = 'meta.json';
export const BUILD_FROM_SOURCE_HINT = 'build from source with npm run build:native (needs cmake and a C++17 compiler)';

export interface PrebuiltMeta {
  platform: string;
  arch: string;
  /** NAPI_VERSION the addon was compiled against: the oldest N-API the host Node.js must offer. */
  napi: number;
  /** glibc of the toolchain's headers and libraries it was built with ("2.36"); null: not a glibc build. */
  glibc: string | null;
  /** Highest GLIBC_x.y symbol version the binary references: the real floor for the host's glibc. */
  glibcRequired: string | null;
  /** Highest GLIBCXX_x.y.z symbol version it references (libstdc++); informational. */
  glibcxxRequired: string | null;
  /** First line of `<compiler> --version`. */
  compiler: string;
  /** `git rev-parse HEAD` of the sources, with "-dirty" when the tree had changes; null outside git. */
  commit: string | null;
  /** sha256 of lvunet_edge.node, hex. */
  sha256: string;
  /** ISO 8601 time of the build. */
  builtAt: string;
}

/** What the running process offers a prebuilt. */
export interface HostRuntime {
  /** glibc version at run time; null where there is none (musl, macOS). */
  glibc: string | null;
  napi: number;
}

export type PrebuiltResult =
  | { status: 'found'; target: string; path: string; meta: PrebuiltMeta }
  | { status: 'missing'; target: string; available: string[]; message: string }
  | { status: 'incompatible'; target: string; path: string; reason: string; message: string };

/** glibc version of this process from Node's diagnostic report; null without glibc. */
export function runtimeGlibcVersion(): string | null {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: unknown } }).header;
  return typeof header?.glibcVersionRuntime === 'string' ? header.glibcVersionRuntime : null;
}

export function hostRuntime(): HostRuntime {
  return { glibc: runtimeGlibcVersion(), napi: Number(process.versions.napi) };
}


const VERSION = /^\d+(\.\d+)*$/;

function isVersionOrNull(v: unknown): v is string | null {
  return v === null || (typeof v === 'string' && VERSION.test(v));
}

/** Reads and validates a prebuilt's meta.json; throws naming the file and the bad field. */
export function readPrebuiltMeta(dir: string): PrebuiltMeta {
  const file = join(dir, META_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const m = raw as Partial<Record<keyof PrebuiltMeta, unknown>>;
  const bad = (field: string): never => {
    throw new Error(`${file}: ${field} is missing or invalid`);
  };
  if (typeof raw !== 'object' || raw === null) bad('the top level');
  if (typeof m.platform !== 'string') bad('platform');
  if (typeof m.arch !== 'string') bad('arch');
  if (typeof m.napi !== 'number' || !Number.isInteger(m.napi) || m.napi < 1) bad('napi');
  if (!isVersionOrNull(m.glibc)) bad('glibc');
  if (!isVersionOrNull(m.glibcRequired)) bad('glibcRequired');
  if (!isVersionOrNull(m.glibcxxRequired)) bad('glibcxxRequired');
  if (typeof m.compiler !== 'string') bad('compiler');
  if (m.commit !== null && typeof m.commit !== 'string') bad('commit');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) bad('sha256');
  if (typeof m.builtAt !== 'string') bad('builtAt');
  return m as PrebuiltMeta;
}

/** Targets ("linux-x64") that have an addon under prebuilds/, sorted. */
export function availablePrebuilds(root: string): string[] {
  const dir = join(root, PREBUILDS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, ADDON_FILE)))
    .map((e) => e.name)
    .sort();
}

/** Why `meta` cannot run on `host` (undefined: it can). */
export function incompatibility(meta: PrebuiltMeta, host: HostRuntime): string | undefined {
  const target = `${meta.platform}-${meta.arch}`;
  // Prefer the symbol floor: a binary built on glibc 2.36 often needs only 2.34.
  const needs = meta.glibcRequired ?? meta.glibc;
  if (needs !== null) {
    if (host.glibc === null) return `the prebuilt binary for ${target} needs glibc >= ${needs} but this system has no glibc (musl?)`;
    if (compareVersions(host.glibc, needs) < 0) {
      return `the prebuilt binary for ${target} needs glibc >= ${needs} but this system has glibc ${host.glibc}`;
    }
  }
  if (!(host.napi >= meta.napi)) {
    return `the prebuilt binary for ${target} needs N-API ${meta.napi} but this Node.js (${process.version}) offers N-API ${host.napi}`;
  }
  return undefined;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The prebuilt addon for `platform`-`arch` under `root`, if there is one this machine can load.
 * Otherwise a one-line message saying why and what to do, for the loader's error.
 */
export function prebuiltCandidate(
  root: string,
  platform: string = process.platform,
  arch: string = process.arch,
  host: HostRuntime = hostRuntime(),
): PrebuiltResult {
  const target = `${platform}-${arch}`;
  const dir = join(root, PREBUILDS_DIR, target);
  const path = join(dir, ADDON_FILE);
  if (!existsSync(path)) {
    const available = availablePrebuilds(root);
    return {
      status: 'missing',
      target,
      available,
      message: `no prebuilt binary for ${target} (available: ${available.length > 0 ? available.join(', ') : 'none'}); ${BUILD_FROM_SOURCE_HINT}`,
    };
  }
  const refuse = (reason: string): PrebuiltResult => ({ status: 'incompatible', target, path, reason, message: `${reason}; ${BUILD_FROM_SOURCE_HINT}` });
  let meta: PrebuiltMeta;
  try {
    meta = readPrebuiltMeta(dir);
  } catch (err) {
    return refuse(`the prebuilt binary for ${target} cannot be checked: ${(err as Error).message}`);
  }
  if (meta.platform !== platform || meta.arch !== arch) {
    return refuse(`${join(dir, META_FILE)} describes ${meta.platform}-${meta.arch}, not ${target}`);
  }
  const why = incompatibility(meta, host);
  if (why) return refuse(why);
  // A truncated copy or an addon swapped in by hand would otherwise fail later with an opaque dlopen error.
  if (sha256File(path) !== meta.sha256) return refuse(`${path} does not match the sha256 in its ${META_FILE} (damaged or replaced)`);
  return { status: 'found', target, path, meta };
}
