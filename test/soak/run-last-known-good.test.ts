// issue 18 finding 8: the documented last-known-good config was never written by `run`. Now the
// first result of a run started from a config file saves it (atomically, mode 0600); a broken file
// at the next start runs that copy instead, loudly (log and a published config event); a run that
// never produced a result, or that runs on the copy itself, leaves it alone.
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { LAST_KNOWN_GOOD_FILE } from '../../src/config/index.js';
import { validateEvent } from '../../src/fleet/schemas.js';
import { buildModelDir, seededModelWeights } from '../../src/model/build.js';
import { json, recorder } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { ensureStopped, resultLines, startRun, stateDir } from '../integration/run-helpers.js';

function configText(state: string, model: string, threshold: string): string {
  return [
    `state_dir: ${state}`,
    'model:',
    `  path: ${model}`,
    'source:',
    '  uri: synthetic',
    '  width: 64',
    '  height: 48',
    '  fps: 0',
    'inference:',
    `  threshold: ${threshold}`,
    '',
  ].join('\n');
}

interface Saved {
  format: string;
  saved_at: string;
  file: string;
  file_sha256: string;
  layer: { inference?: { threshold?: number } };
}

t.test('run saves the last-known-good after its first result and falls back to it on a broken file', async (t) => {
  const dir = stateDir(t, 'lkg');
  const state = join(dir, 'state');
  const model = join(dir, 'model');
  buildModelDir(seededModelWeights(1), { height: 128, width: 128 }, model);
  const cfg = join(dir, 'lvunet-edge.yaml');
  const lkg = join(state, LAST_KNOWN_GOOD_FILE);
  const good = configText(state, model, '0.4');
  writeFileSync(cfg, good);

  // A valid config whose model cannot load never gets a result: nothing is saved.
  writeFileSync(cfg, configText(state, join(dir, 'no-such-model'), '0.4'));
  const failing = startRun(['--config', cfg, '--max-frames', '2', '--sink', 'none']);
  t.teardown(() => ensureStopped(failing));
  t.not(await failing.exited, 0);
  t.notOk(existsSync(lkg), 'a run that produced no result saves nothing');

  writeFileSync(cfg, good);
  const first = startRun(['--config', cfg, '--max-frames', '3', '--sink', 'none']);
  t.teardown(() => ensureStopped(first));
  t.equal(await first.exited, 0, first.stderr());
  t.match(first.stderr(), `config: ${cfg} saved as last-known-good (${lkg})`);
  t.ok(existsSync(lkg), 'written by run');
  t.equal(statSync(lkg).mode & 0o777, 0o600, 'mode 0600 (it may hold the broker password)');
  const saved = JSON.parse(readFileSync(lkg, 'utf8')) as Saved;
  t.match(saved, { format: 'lvunet-edge/last-known-good@1', file: cfg, file_sha256: createHash('sha256').update(good).digest('hex'), layer: { inference: { threshold: 0.4 } } });

  // A bad edit: the file no longer validates.
  writeFileSync(cfg, configText(state, model, '7'));
  const broker = findMosquitto() ? await startBroker({ t }) : undefined;
  const ops = broker ? await recorder(broker.url, ['lvunet/lkg-cart/event']) : undefined;
  t.teardown(() => ops?.close());
  const second = startRun(['--config', cfg, '--max-frames', '3', '--sink', 'stdout', ...(broker ? ['--mqtt', broker.url, '--device-id', 'lkg-cart'] : [])]);
  t.teardown(() => ensureStopped(second));
  t.equal(await second.exited, 0, second.stderr());
  t.match(second.stderr(), new RegExp(`CONFIG REJECTED: .*lvunet-edge\\.yaml has 1 problem\\(s\\); running the last-known-good config saved ${saved.saved_at}`));
  t.match(second.stderr(), /inference\.threshold: 7 is not in \[0, 1\]/);
  const results = resultLines(second.stdout());
  t.equal(results.length, 3, 'the device kept working on the saved config');
  t.notMatch(second.stderr(), /saved as last-known-good/, 'running on the copy does not rewrite it');
  t.equal((JSON.parse(readFileSync(lkg, 'utf8')) as Saved).saved_at, saved.saved_at);
  await t.test('the fallback is published as a config event', { skip: ops ? false : 'mosquitto is not installed: the published config.fallback event cannot be checked' }, async (t) => {
    if (!ops) return;
    await ops.until((ms) => ms.some((m) => (json(m).details as { kind?: string } | undefined)?.kind === 'config.fallback'), 'config.fallback event', 30_000);
    const ev = json(ops.messages.find((m) => (json(m).details as { kind?: string } | undefined)?.kind === 'config.fallback')!);
    t.ok(validateEvent(ev).ok, 'a valid event');
    t.match(ev, { type: 'config', severity: 'error', message: /^CONFIG REJECTED/, details: { file: cfg, issues: [{ path: 'inference.threshold' }], lastKnownGood: { path: lkg } } });
  });
});
