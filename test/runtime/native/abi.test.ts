// The loader refuses an addon built from other native sources (a stale build/, an old prebuilt,
// LVUNET_EDGE_NATIVE), naming the file, both interface versions and the fix.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadNativeBinding, NATIVE_ABI_VERSION, NativeAbiError, nativeCandidates } from '../../../src/runtime/native/binding.js';
import { native } from './fixtures/native.js';

const { binding, skip } = native();

t.test('the built addon implements this interface version and exports the V4L2 device', { skip }, async (t) => {
  t.equal(binding?.abiVersion, NATIVE_ABI_VERSION);
  t.type(binding?.V4l2Device, 'function');
});

t.test('an addon of another interface version is refused with the file, both versions and the fix', async (t) => {
  const dir = t.testdir();
  // require() loads CommonJS modules from the candidate list as it loads .node files: stand-ins for
  // an addon built from older or newer sources, and one from before the version export.
  const older = join(dir, 'older.cjs');
  const unversioned = join(dir, 'unversioned.cjs');
  writeFileSync(older, `module.exports = { abiVersion: ${NATIVE_ABI_VERSION - 1} };\n`);
  writeFileSync(unversioned, 'module.exports = { loadRuntime() {} };\n');
  t.throws(() => loadNativeBinding([older]), {
    code: 'ERR_NATIVE_ADDON_LOAD',
    message: new RegExp(`older\\.cjs implements native interface version ${NATIVE_ABI_VERSION - 1}, this lvunet-edge needs version ${NATIVE_ABI_VERSION}[\\s\\S]*npm run build:native`),
  });
  let err: unknown;
  try {
    loadNativeBinding([unversioned]);
  } catch (e) {
    err = e;
  }
  const attempts = (err as { attempts?: { path: string; error: Error }[] }).attempts ?? [];
  t.equal(attempts.length, 1);
  t.ok(attempts[0]?.error instanceof NativeAbiError, 'the attempt carries a NativeAbiError');
  t.match(attempts[0]?.error, { code: 'ERR_NATIVE_ABI', path: unversioned, found: undefined, message: /none: built before versioning/ });
});

t.test('a refused candidate does not stop the loader: the next one that matches is used', { skip }, async (t) => {
  const dir = t.testdir({ 'older.cjs': 'module.exports = { abiVersion: 0 };\n' });
  const addon = nativeCandidates().find((p) => p.endsWith('.node') && existsSync(p));
  if (!addon) throw new Error(`no built addon among ${nativeCandidates().join(', ')}`);
  const loaded = loadNativeBinding([join(dir, 'older.cjs'), addon]);
  t.equal(loaded.abiVersion, NATIVE_ABI_VERSION);
  t.type(loaded.loadRuntime, 'function');
});
