/**
 * Hot reload: watches the config file, re-validates it after edits settle, and says what the edit
 * means for the running worker: hot keys are applied live, anything else needs a restart, and an
 * invalid edit is rejected (the running config stays in force).
 *
 * The folder is watched rather than the file: editors save by writing a new file and renaming it
 * over the old one, which would leave a watch on the file's old inode deaf to every later edit.
 */
import { createHash } from 'node:crypto';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import { ConfigError, loadConfig, type LoadedConfig, type LoadOptions } from './load.js';
import { readConfigText } from './parse.js';
import { isPlainObject, type ConfigIssue } from './schema-kit.js';
import { isHotKey, leafKeys, type Config } from './schema.js';

export type ConfigChange =
  | {
      readonly kind: 'hot';
      readonly config: LoadedConfig;
      readonly previous: LoadedConfig;
      /** Every changed key is hot: apply them to the running worker. */
      readonly changed: readonly string[];
    }
  | {
      readonly kind: 'restart-required';
      readonly config: LoadedConfig;
      readonly previous: LoadedConfig;
      readonly changed: readonly string[];
      /** Keys that only take effect when the worker restarts. */
      readonly restartKeys: readonly string[];
      /** Changed hot keys, which may be applied now. */
      readonly hotKeys: readonly string[];
    }
  | {
      readonly kind: 'rejected';
      readonly issues: readonly ConfigIssue[];
      readonly message: string;
      /** Still in force. */
      readonly current: LoadedConfig;
    };

export interface WatchOptions extends Omit<LoadOptions, 'path' | 'optional' | 'lastKnownGood'> {
  /** Quiet time after the last file event before re-reading (editors write in several steps). Default 200 ms. */
  readonly debounceMs?: number;
  /** The config now running; default: loaded from `path` (and thrown if invalid). */
  readonly initial?: LoadedConfig;
}

export interface ConfigWatcher {
  /** The config now in force (updated on hot and restart-required changes). */
  readonly current: LoadedConfig;
  close(): void;
}

function lookup(config: Config, path: readonly string[]): unknown {
  let node: unknown = config;
  for (const p of path) node = isPlainObject(node) ? node[p] : undefined;
  return node;
}

/** Changed leaf keys (a list or mapping counts as one key), in schema order. */
export function diffConfigs(a: Config, b: Config): string[] {
  return leafKeys()
    .filter(({ path }) => JSON.stringify(lookup(a, path)) !== JSON.stringify(lookup(b, path)))
    .map(({ path }) => path.join('.'));
}

export function classifyChanges(changed: readonly string[]): { hot: string[]; restart: string[] } {
  return { hot: changed.filter(isHotKey), restart: changed.filter((k) => !isHotKey(k)) };
}

export function watchConfig(path: string, onChange: (change: ConfigChange) => void, options: WatchOptions = {}): ConfigWatcher {
  const file = resolve(options.cwd ?? process.cwd(), path);
  const { debounceMs = 200, initial, ...loadOptions } = options;
  let current = initial ?? loadConfig({ ...loadOptions, path });
  const readText = (): string | null => {
    try {
      return readConfigText(file);
    } catch {
      return null;
    }
  };
  let lastText = existsSync(file) ? readText() : null;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const hash = (t: string | null) => (t === null ? '' : createHash('sha256').update(t).digest('hex'));

  const reload = () => {
    timer = undefined;
    if (closed) return;
    // A file that cannot be read (gone, or replaced by a FIFO) goes to loadConfig, which says why.
    const text = readText();
    // Touches and saves without edits are not events.
    if (text !== null && hash(text) === hash(lastText)) return;
    lastText = text;
    let next: LoadedConfig;
    try {
      next = loadConfig({ ...loadOptions, path });
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : [{ source: path, path: '', kind: 'parse' as const, message: (err as Error).message }];
      onChange({ kind: 'rejected', issues, message: `${(err as Error).message}\nthe running config stays in force`, current });
      return;
    }
    const changed = diffConfigs(current.config, next.config);
    if (changed.length === 0) {
      current = next;
      return;
    }
    const previous = current;
    current = next;
    const { hot, restart } = classifyChanges(changed);
    if (restart.length === 0) onChange({ kind: 'hot', config: next, previous, changed });
    else onChange({ kind: 'restart-required', config: next, previous, changed, restartKeys: restart, hotKeys: hot });
  };

  const name = basename(file);
  const watcher: FSWatcher = watch(dirname(file), { persistent: true }, (_event, filename) => {
    if (filename !== null && filename !== name) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  });
  watcher.on('error', () => {
    // The folder went away (unmounted, deleted): nothing more to watch; the running config stays.
    watcher.close();
  });

  return {
    get current() {
      return current;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
    },
  };
}
