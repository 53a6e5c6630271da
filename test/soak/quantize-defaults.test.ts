// `model quantize` with no options must give what `model release` made: the same calibration
// images (the stems the manifest records) through the CLI's defaults reproduce the release's INT8
// file byte for byte: the shipped file, or, where the gate rejected it, the sha256 the manifest's
// `rejected` entry records. (About 45 s on 2 cores: the soak tier.)
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { INT8_FILE } from '../../src/model/release.js';
import type { Manifest } from '../../src/model/manifest.js';
import { sha256 } from '../../src/util/files.js';
import { CLI, KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(KVASIR);

const MODEL_DIR = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8')) as Manifest;
interface MadeInt8 {
  sha256: string;
  calibration: { stems: string[]; method: string; percentile: number };
}
const inFiles = manifest.files.find((f) => f.file === INT8_FILE) as unknown as MadeInt8 | undefined;
const inRejected = (manifest.rejected ?? []).find((r) => r.file === INT8_FILE) as unknown as MadeInt8 | undefined;
const shipped = inFiles ?? inRejected;
if (shipped === undefined) throw new Error(`${MODEL_DIR}/manifest.json records no INT8 file, shipped or rejected`);
// Manifests released before rejected entries recorded what was made have neither field.
if (typeof shipped.sha256 !== 'string' || !Array.isArray(shipped.calibration?.stems)) {
  throw new Error(`${MODEL_DIR}/manifest.json: its INT8 entry has no sha256 or calibration stems; re-run 'model release' to record them`);
}

t.test(`no options: the release's INT8 file (${inFiles ? 'shipped' : 'rejected by its gate'}), byte for byte`, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'quantize-defaults-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const calib = join(tmp, 'calib');
  const out = join(tmp, 'out');
  mkdirSync(calib);
  const images = readdirSync(join(KVASIR, 'images'));
  for (const stem of shipped.calibration.stems) {
    const name = images.find((n) => n.startsWith(`${stem}.`));
    if (name === undefined) throw new Error(`calibration image ${stem} is not in ${KVASIR}/images`);
    copyFileSync(join(KVASIR, 'images', name), join(calib, name));
  }
  const r = spawnSync(process.execPath, [CLI, 'model', 'quantize', '--int8', '--model', join(MODEL_DIR, 'lvunet.fp32.onnx'), '--calib', calib, '--out', out], { encoding: 'utf8', timeout: 240_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr + r.stdout, /kept float: firstconv, encoder1 \(the release default/);
  t.equal(sha256(readFileSync(join(out, INT8_FILE))), shipped.sha256, `same sha256 as the release's ${INT8_FILE} (models/lvunet-kvasir/manifest.json)`);
});

