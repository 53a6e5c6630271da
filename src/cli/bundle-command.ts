import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BundleError } from '../fleet/bundles/errors.js';
import { runSelfTest } from '../fleet/bundles/golden.js';
import { generateKeys, loadPrivateKey, loadTrustedKeys } from '../fleet/bundles/keys.js';
import { createOrtRunner } from '../fleet/bundles/ort-runner.js';
import { signBundle } from '../fleet/bundles/sign.js';
import { ModelStore, type InstalledVersion } from '../fleet/bundles/store.js';
import { checkBundle } from '../fleet/bundles/verify.js';
import type { BundleManifest } from '../fleet/bundles/format.js';
import { makeReleaseSection } from '../fleet/bundles/policy.js';
import { UsageError } from './errors.js';
import { BUNDLE_KEYGEN_USAGE, BUNDLE_SIGN_USAGE, BUNDLE_VERIFY_USAGE, BUNDLE_INSTALL_USAGE, BUNDLE_ROLLBACK_USAGE, BUNDLE_STATUS_USAGE } from './usage.js';

type Out = (text: string) => void;

function pubkeys(values: { pubkey?: string[] }, usage: string): string[] {
  const keys = values.pubkey ?? [];
  if (keys.length === 0) throw new UsageError('give at least one --pubkey public.pem', usage);
  return keys;
}

function one(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError('give one BUNDLE (directory or URL)', usage);
  return positionals[0];
}

function summary(v: InstalledVersion | undefined): Record<string, unknown> | null {
  return v ? { version: v.version, dir: v.dir, model: v.modelPath, release: v.manifest.release ?? null } : null;
}

function describeRelease(m: BundleManifest): string {
  const r = m.release;
  if (!r) return 'unversioned (version 0, any device, no expiry)';
  return `${r.version}${r.group !== undefined ? `, group ${r.group}` : ', any group'}${r.notAfter !== undefined ? `, expires ${r.notAfter}` : ', no expiry'}`;
}

/** Failures as JSON (for scripts and the fleet agent) keep the step and file machine-readable. */
function failure(err: unknown, json: boolean, print: Out): never {
  if (json && err instanceof BundleError) {
    print(JSON.stringify({ ok: false, step: err.step, code: err.code ?? null, file: err.file ?? null, error: err.message }, null, 2));
  }
  throw err;
}

export function bundleKeygen(argv: string[], print: Out): void {
  const { values, positionals } = parseArgs({ args: argv, options: { out: { type: 'string' } }, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, BUNDLE_KEYGEN_USAGE);
  if (!values.out) throw new UsageError('--out DIR is required', BUNDLE_KEYGEN_USAGE);
  const keys = generateKeys(values.out);
  print(`key id ${keys.keyId}\nprivate ${keys.privatePath} (keep secret, mode 0600)\npublic  ${keys.publicPath} (install on devices)`);
}

export async function bundleSign(argv: string[], log: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      key: { type: 'string' },
      out: { type: 'string' },
      golden: { type: 'string' },
      'golden-count': { type: 'string', default: '4' },
      threshold: { type: 'string', default: '0.98' },
      'model-file': { type: 'string' },
      version: { type: 'string' },
      group: { type: 'string' },
      expires: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, BUNDLE_SIGN_USAGE);
  const release = { version: values.version, group: values.group, notAfter: values.expires };
  try {
    makeReleaseSection(release, new Date());
  } catch (err) {
    throw new UsageError((err as Error).message, BUNDLE_SIGN_USAGE);
  }
  if (!values.model || !values.key || !values.out) throw new UsageError('--model, --key and --out are required', BUNDLE_SIGN_USAGE);
  const count = Number(values['golden-count']);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`--golden-count ${values['golden-count']} is not a positive integer`, BUNDLE_SIGN_USAGE);
  const threshold = Number(values.threshold);
  if (!(threshold > 0 && threshold <= 1)) throw new UsageError(`--threshold ${values.threshold} is not in (0, 1]`, BUNDLE_SIGN_USAGE);
  const result = await signBundle({
    modelDir: values.model,
    privateKey: loadPrivateKey(values.key),
    outDir: values.out,
    goldenDir: values.golden,
    goldenCount: count,
    threshold,
    modelFile: values['model-file'],
    release,
    runModel: createOrtRunner(),
    log,
  });
  log(`bundle ${result.dir}: version ${result.version}, key ${result.keyId}, release ${describeRelease(result.manifest)}`);
}

export async function bundleVerify(argv: string[], print: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { pubkey: { type: 'string', multiple: true }, json: { type: 'boolean', default: false }, 'self-test': { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const source = one(positionals, BUNDLE_VERIFY_USAGE);
  const trusted = loadTrustedKeys(pubkeys(values, BUNDLE_VERIFY_USAGE));
  const json = values.json;
  try {
    const isUrl = /^https?:\/\//i.test(source);
    // A URL has to be downloaded somewhere to run its golden frames; a directory is checked in place.
    const tmp = values['self-test'] && isUrl ? await mkdtemp(join(tmpdir(), 'lvunet-bundle-')) : undefined;
    const staging = tmp === undefined ? undefined : join(tmp, 'bundle');
    try {
      const v = await checkBundle(source, trusted, { stagingDir: staging });
      const dir = staging ?? (isUrl ? undefined : source);
      const selfTest = values['self-test'] && dir !== undefined ? await runSelfTest(dir, v.manifest, createOrtRunner()) : undefined;
      if (json) {
        print(JSON.stringify({ ok: true, version: v.version, keyId: v.keyId, release: v.manifest.release ?? null, source: v.source, files: v.files, selfTest: selfTest ?? null }, null, 2));
      } else {
        print(`OK ${v.source}: version ${v.version}, signed by ${v.keyId}, release ${describeRelease(v.manifest)}, ${v.files.length} files verified`);
        if (selfTest) print(`self-test: mean Dice ${selfTest.meanDice.toFixed(4)} >= ${selfTest.threshold} over ${selfTest.perFrame.length} frames`);
      }
    } finally {
      if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    failure(err, json, print);
  }
}

function storeArgs(argv: string[], usage: string, extra: Record<string, { type: 'boolean'; default: boolean } | { type: 'string' }> = {}) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { 'state-dir': { type: 'string' }, pubkey: { type: 'string', multiple: true }, json: { type: 'boolean', default: false }, ...extra },
    allowPositionals: true,
  });
  if (!values['state-dir']) throw new UsageError('--state-dir DIR is required', usage);
  return { values: values as typeof values & Record<string, string | boolean | string[] | undefined>, positionals, stateDir: values['state-dir'] };
}

export async function bundleInstall(argv: string[], print: Out): Promise<void> {
  const { values, positionals, stateDir } = storeArgs(argv, BUNDLE_INSTALL_USAGE, {
    'require-golden': { type: 'boolean', default: false },
    'allow-downgrade': { type: 'boolean', default: false },
    'device-group': { type: 'string' },
  });
  const source = one(positionals, BUNDLE_INSTALL_USAGE);
  const json = values.json === true;
  const store = await ModelStore.open({
    stateDir,
    trustedKeys: pubkeys(values as { pubkey?: string[] }, BUNDLE_INSTALL_USAGE),
    runModel: createOrtRunner(),
    requireGolden: values['require-golden'] === true,
    deviceGroup: typeof values['device-group'] === 'string' ? values['device-group'] : undefined,
  });
  try {
    const r = await store.install(source, { allowDowngrade: values['allow-downgrade'] === true, reason: 'cli' });
    if (json) {
      print(JSON.stringify({ ok: true, changed: r.changed, current: summary(r.current), previous: summary(r.previous), selfTest: r.selfTest ?? null }, null, 2));
    } else {
      print(r.changed ? `installed ${r.current.version} (previous ${r.previous?.version ?? 'none'})` : `${r.current.version} is already current`);
      if (r.selfTest) print(`self-test: mean Dice ${r.selfTest.meanDice.toFixed(4)} >= ${r.selfTest.threshold}`);
    }
  } catch (err) {
    failure(err, json, print);
  }
}

export async function bundleRollback(argv: string[], print: Out): Promise<void> {
  const { values, positionals, stateDir } = storeArgs(argv, BUNDLE_ROLLBACK_USAGE, { 'device-group': { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, BUNDLE_ROLLBACK_USAGE);
  const json = values.json === true;
  const store = await ModelStore.open({
    stateDir,
    trustedKeys: pubkeys(values as { pubkey?: string[] }, BUNDLE_ROLLBACK_USAGE),
    runModel: createOrtRunner(),
    deviceGroup: typeof values['device-group'] === 'string' ? values['device-group'] : undefined,
  });
  try {
    const before = store.current();
    const now = await store.rollback({ reason: 'cli' });
    print(json ? JSON.stringify({ ok: true, current: summary(now), previous: summary(store.previous()) }, null, 2) : `rolled back from ${before?.version ?? 'none'} to ${now.version}`);
  } catch (err) {
    failure(err, json, print);
  }
}

export async function bundleStatus(argv: string[], print: Out): Promise<void> {
  const { values, positionals, stateDir } = storeArgs(argv, BUNDLE_STATUS_USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, BUNDLE_STATUS_USAGE);
  // Status only reads pointers; it needs neither keys nor a runner, so it cannot fail on them.
  const store = await ModelStore.open(
    {
      stateDir,
      trustedKeys: [],
      runModel: async () => {
        throw new Error('bundle status runs no model');
      },
    },
    // Read-only: recovery would delete the staging dir of an install running in another process.
    { recover: false },
  );
  const current = store.current();
  const previous = store.previous();
  if (values.json === true) print(JSON.stringify({ current: summary(current), previous: summary(previous) }, null, 2));
  else {
    print(`current  ${current?.version ?? 'none'}${current ? ` (${current.modelPath}; release ${describeRelease(current.manifest)})` : ''}`);
    print(`previous ${previous?.version ?? 'none'}${previous ? ` (release ${describeRelease(previous.manifest)})` : ''}`);
  }
}
