import { ConfigError, loadConfig, type ConfigIssue, type LoadOptions } from '../../src/config/index.js';

/** A fixed machine, so defaults that depend on host name and home folder are stable in tests. */
export const BASE: LoadOptions = { env: {}, hostname: 'cart-1', homedir: '/home/op', cwd: '/srv' };

/** The issues a config load reports; fails if it loads. */
export function issuesOf(options: LoadOptions): ConfigIssue[] {
  try {
    loadConfig({ ...BASE, ...options });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}
