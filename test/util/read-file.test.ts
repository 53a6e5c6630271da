// src/util/read-file.ts: the one reader for files the process depends on (models, config,
// trusted keys). Only regular files, size checked first, nothing that can block.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTrustedKeys } from '../../src/fleet/bundles/keys.js';
import { FileReadError, readRegularFileSync } from '../../src/util/read-file.js';

const skip = spawnSync('mkfifo', ['--version']).status === 0 ? false : 'mkfifo is not available';

t.test('regular files up to the limit are read whole; everything else is refused with a code', { skip }, async (t) => {
  const dir = t.testdir({ 'a.bin': 'hello' });
  const a = join(dir, 'a.bin');
  t.equal(readRegularFileSync(a, 5).toString(), 'hello');
  t.throws(() => readRegularFileSync(a, 4), { name: 'FileReadError', code: 'EFBIG', path: a, message: `${a}: is 5 bytes, over the limit of 4 bytes` });
  const fifo = join(dir, 'f');
  spawnSync('mkfifo', [fifo]);
  // Nobody writes to it: a blocking open or read would hang here until tap's timeout.
  t.throws(() => readRegularFileSync(fifo, 1 << 20), { code: 'ENOTREG', reason: 'is a FIFO, not a regular file; refusing to read it' });
  t.throws(() => readRegularFileSync('/dev/zero', 1 << 20), { code: 'ENOTREG', reason: /character device/ });
  t.throws(() => readRegularFileSync(dir, 1 << 20), { code: 'ENOTREG', reason: /a directory/ });
  t.throws(() => readRegularFileSync(join(dir, 'nope'), 1), { code: 'ENOENT', reason: 'not found' });
  const err = (() => {
    try {
      readRegularFileSync(fifo, 1);
    } catch (e) {
      return e;
    }
  })();
  t.ok(err instanceof FileReadError);
});

t.test('a trusted key that is a FIFO is refused, not waited for', { skip }, async (t) => {
  const dir = t.testdir();
  const fifo = join(dir, 'fleet.pem');
  spawnSync('mkfifo', [fifo]);
  t.throws(() => loadTrustedKeys([fifo]), new RegExp(`${fifo}: not a usable public key: .*is a FIFO, not a regular file`));
  writeFileSync(join(dir, 'big.pem'), 'x'.repeat(65 * 1024));
  t.throws(() => loadTrustedKeys([join(dir, 'big.pem')]), /over the limit of 65536 bytes/);
});
