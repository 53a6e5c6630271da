export * from './errors.js';
export * from './format.js';
export * from './keys.js';
export * from './fetch.js';
export * from './golden.js';
export * from './verify.js';
export * from './sign.js';
export * from './store.js';
