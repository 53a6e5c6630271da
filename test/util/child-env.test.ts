// test/helpers/child-env.ts: what a child of a test process gets (see child-env-hook.ts).
import t from 'tap';
import { childCoverageDir } from '../helpers/child-coverage.js';
import { childEnv } from '../helpers/child-env.js';

const hook = '"--import=file:///x/node_modules/@tapjs/processinfo/dist/esm/import.mjs"';

t.test('tap\'s process-info hook and variables are removed; other options are kept', async (t) => {
  const env = childEnv({
    PATH: '/bin',
    NODE_OPTIONS: `--max-old-space-size=512 ${hook} "--import" "file:///repo/test/helpers/worker-block-hook.mjs"`,
    _TAPJS_PROCESSINFO_COVERAGE_: '0',
    _TAPJS_PROCESSINFO_EXCLUDE_: '/x/',
  });
  t.equal(env.NODE_OPTIONS, '--max-old-space-size=512 "--import" "file:///repo/test/helpers/worker-block-hook.mjs"');
  t.equal(env.PATH, '/bin');
  t.same(Object.keys(env).filter((k) => k.startsWith('_TAPJS_PROCESSINFO_')), []);
  t.equal(env.NODE_V8_COVERAGE, undefined, 'no coverage when tap collects none');
});

t.test('only the hook: NODE_OPTIONS goes; with coverage on, V8 coverage goes to this process\'s directory', async (t) => {
  const env = childEnv({ NODE_OPTIONS: hook, _TAPJS_PROCESSINFO_COVERAGE_: '1' });
  t.notOk('NODE_OPTIONS' in env);
  t.equal(env.NODE_V8_COVERAGE, childCoverageDir(), 'a directory of this process, filtered at its exit');
  t.match(env.NODE_V8_COVERAGE, new RegExp(`[\\\\/]\\.tap[\\\\/]child-coverage[\\\\/]${process.pid}-[0-9a-z]+-[0-9a-z]+$`), 'under .tap/child-coverage, tagged beyond the pid');
  t.equal(childEnv({ NODE_V8_COVERAGE: '/elsewhere', _TAPJS_PROCESSINFO_COVERAGE_: '1' }).NODE_V8_COVERAGE, '/elsewhere', 'a directory already set is kept');
});
