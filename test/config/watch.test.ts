import t from 'tap';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { classifyChanges, diffConfigs, loadConfig, watchConfig, type ConfigChange, type LoadOptions } from '../../src/config/index.js';

const BASE: LoadOptions = { env: {}, hostname: 'cart-1', homedir: '/home/op', cwd: '/srv' };
const WAIT_MS = 5000;

const CONFIG = ['inference:', '  threshold: 0.5', 'publish:', '  every_n: 1', 'telemetry:', '  interval_s: 10', 'source:', '  fps: 30', ''].join('\n');

/** Collects watcher events; `next()` waits (bounded) for the next one. */
function collector() {
  const queue: ConfigChange[] = [];
  const waiters: ((c: ConfigChange) => void)[] = [];
  return {
    onChange(change: ConfigChange) {
      const w = waiters.shift();
      if (w) w(change);
      else queue.push(change);
    },
    next(): Promise<ConfigChange> {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no config change within ${WAIT_MS} ms`)), WAIT_MS);
        waiters.push((c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
    },
    /** Resolves true if nothing arrives within `ms`. */
    async quiet(ms: number): Promise<boolean> {
      await new Promise((r) => setTimeout(r, ms));
      return queue.length === 0;
    },
  };
}

t.test('diff classification', async (t) => {
  const a = loadConfig(BASE).config;
  const b = loadConfig({ ...BASE, cli: { inference: { threshold: 0.3 }, telemetry: { interval_s: 5 }, source: { fps: 15 }, runtime: { profile: 'cuda' } } }).config;
  const changed = diffConfigs(a, b);
  t.same(changed, ['runtime.profile', 'runtime.providers', 'source.fps', 'inference.threshold', 'telemetry.interval_s']);
  t.same(classifyChanges(changed), { hot: ['inference.threshold', 'telemetry.interval_s'], restart: ['runtime.profile', 'runtime.providers', 'source.fps'] });
  t.same(diffConfigs(a, a), []);
});

t.test('hot edits, restart-required edits and invalid edits, through a real fs.watch', async (t) => {
  const dir = t.testdir({ 'config.yaml': CONFIG });
  const path = join(dir, 'config.yaml');
  const events = collector();
  const watcher = watchConfig(path, events.onChange, { ...BASE, debounceMs: 50 });
  t.teardown(() => watcher.close());
  t.equal(watcher.current.config.inference.threshold, 0.5);

  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.3').replace('every_n: 1', 'every_n: 2'));
  const hot = await events.next();
  t.equal(hot.kind, 'hot');
  if (hot.kind !== 'hot') return;
  t.same(hot.changed, ['inference.threshold', 'publish.every_n']);
  t.equal(hot.config.config.inference.threshold, 0.3);
  t.equal(hot.previous.config.inference.threshold, 0.5);
  t.equal(watcher.current.config.publish.every_n, 2, 'applied');

  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.3').replace('every_n: 1', 'every_n: 2').replace('fps: 30', 'fps: 15').replace('interval_s: 10', 'interval_s: 20'));
  const restart = await events.next();
  t.equal(restart.kind, 'restart-required');
  if (restart.kind !== 'restart-required') return;
  t.same(restart.restartKeys, ['source.fps']);
  t.same(restart.hotKeys, ['telemetry.interval_s']);
  t.same(restart.changed, ['source.fps', 'telemetry.interval_s']);

  const before = watcher.current;
  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 1.7').replace('fps: 30', 'fsp: 30'));
  const rejected = await events.next();
  t.equal(rejected.kind, 'rejected');
  if (rejected.kind !== 'rejected') return;
  t.same(
    rejected.issues.map((i) => [i.path, i.kind, i.line]),
    [
      ['inference.threshold', 'range', 2],
      ['source.fsp', 'unknown-key', 8],
    ],
  );
  t.match(rejected.message, /inference\.threshold: 1\.7 is not in \[0, 1\]/);
  t.match(rejected.message, /the running config stays in force/);
  t.equal(watcher.current, before, 'the old config keeps running');
  t.equal(rejected.current.config.source.fps, 15);

  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.3').replace('every_n: 1', 'every_n: 2').replace('fps: 30', 'fps: 15').replace('interval_s: 10', 'interval_s: 20'));
  t.ok(await events.quiet(400), 'restoring the running config is not a change');
});

t.test('editor-style atomic saves (write + rename) keep being seen', async (t) => {
  const dir = t.testdir({ 'config.yaml': CONFIG });
  const path = join(dir, 'config.yaml');
  const events = collector();
  const watcher = watchConfig(path, events.onChange, { ...BASE, debounceMs: 50 });
  t.teardown(() => watcher.close());
  for (const threshold of [0.4, 0.6]) {
    writeFileSync(join(dir, '.config.yaml.swp'), CONFIG.replace('threshold: 0.5', `threshold: ${threshold}`));
    renameSync(join(dir, '.config.yaml.swp'), path);
    const change = await events.next();
    t.equal(change.kind, 'hot');
    t.equal(watcher.current.config.inference.threshold, threshold);
  }
  writeFileSync(join(dir, 'other.yaml'), 'not: watched\n');
  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.6'));
  t.ok(await events.quiet(400), 'other files and unchanged content are ignored');
});

t.test('a burst of writes is debounced into one reload', async (t) => {
  const dir = t.testdir({ 'config.yaml': CONFIG });
  const path = join(dir, 'config.yaml');
  const events = collector();
  const watcher = watchConfig(path, events.onChange, { ...BASE, debounceMs: 150 });
  t.teardown(() => watcher.close());
  // Half-written states (invalid on their own) must not be reported when the final state is valid.
  writeFileSync(path, 'inference:\n  threshold: ');
  writeFileSync(path, 'inference:\n  threshold: 0.');
  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.9'));
  const change = await events.next();
  t.equal(change.kind, 'hot');
  t.equal(watcher.current.config.inference.threshold, 0.9);
  t.ok(await events.quiet(400), 'exactly one event');
});

t.test('close() stops watching', async (t) => {
  const dir = t.testdir({ 'config.yaml': CONFIG });
  const path = join(dir, 'config.yaml');
  const events = collector();
  const watcher = watchConfig(path, events.onChange, { ...BASE, debounceMs: 20 });
  watcher.close();
  writeFileSync(path, CONFIG.replace('threshold: 0.5', 'threshold: 0.1'));
  t.ok(await events.quiet(300));
});
