export * from './store.js';
export { MemoryStore } from './memory.js';
export { DiskStore, type DiskStoreOptions, type FsyncPolicy, type Clock } from './disk.js';
