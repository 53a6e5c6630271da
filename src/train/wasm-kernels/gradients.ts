/**
 * tfjs-core 4.22's Node entry (dist/tf-core.node.js) registers no gradients, so tf.grad fails on
 * every op; the gradients live only in its ES-module files, whose relative imports lack the `.js`
 * extension Node requires. A resolve hook that retries such imports with `.js` lets Node load them.
 * The load hook marks those files as ES modules outright: under a TypeScript loader (tsx, as tap
 * uses) they would otherwise be treated as CommonJS (the package has no "type") and fail.
 * They form a second copy of tfjs-core's modules, which is harmless: the engine and the kernel and
 * gradient registries are process-wide singletons, and Tensor's instanceof check is structural.
 */
import { register } from 'node:module';
import { getGradient } from '@tensorflow/tfjs-core';

const HOOK = `
import { readFile } from 'node:fs/promises';
const DIST = '/@tensorflow/tfjs-core/dist/';
const isEsmFile = (url) => url.startsWith('file:') && url.includes(DIST) && url.endsWith('.js') && !/\\/tf-core[^/]*\\.js$/.test(url);
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (specifier.startsWith('.') && !specifier.endsWith('.js') && (context.parentURL ?? '').includes(DIST)) {
      return next(specifier + '.js', context);
    }
    throw e;
  }
}
export async function load(url, context, next) {
  if (!isEsmFile(url)) return next(url, context);
  return { format: 'module', source: await readFile(new URL(url), 'utf8'), shortCircuit: true };
}
`;

let loading: Promise<void> | undefined;

/** Registers every tfjs-core gradient (takes a few seconds: ~600 modules). Idempotent. */
export function registerTfjsGradients(): Promise<void> {
  if (getGradient('Sum') !== undefined) return Promise.resolve();
  loading ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(HOOK)}`);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  })();
  return loading;
}
