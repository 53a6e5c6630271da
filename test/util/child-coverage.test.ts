// test/helpers/child-coverage.ts: children's V8 coverage filtered by tap's own rule.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { collectChildCoverage, coveredByTap } from '../helpers/child-coverage.js';
import { REPO_ROOT } from '../helpers/paths.js';

const src = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const helper = join(REPO_ROOT, 'dist', 'test', 'fleet', 'bundles', 'crash-child.js');
const dep = join(REPO_ROOT, 'node_modules', 'mqtt', 'build', 'index.js');
const url = (p: string): string => pathToFileURL(p).href;

t.test('coveredByTap: the project minus node_modules and the excluded files', async (t) => {
  const covered = coveredByTap({ _TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_: `${helper}\n${join(REPO_ROOT, 'dist', 'test', 'x.test.js')}` });
  t.ok(covered(src));
  t.notOk(covered(helper), 'a coverage-excluded test helper');
  t.notOk(covered(dep), 'node_modules');
  t.notOk(covered('/usr/lib/node_modules/npm/index.js'), 'outside the project');
  t.notOk(covered(`${REPO_ROOT}-other/dist/src/a.js`), 'a sibling directory sharing the prefix');
  t.ok(coveredByTap({})(helper), 'nothing excluded when tap lists nothing');
});

t.test('coveredByTap: a coverage map lists the only covered files; a custom exclusion pattern replaces node_modules', async (t) => {
  const mapped = coveredByTap({ _TAPJS_PROCESSINFO_COV_FILES_: `${src}\n`, _TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_: src });
  t.ok(mapped(src), 'listed by the map (the map wins over the excluded list, as in tap)');
  t.notOk(mapped(join(REPO_ROOT, 'dist', 'src', 'cli', 'usage.js')), 'not in the map');
  const pattern = coveredByTap({ _TAPJS_PROCESSINFO_COV_EXCLUDE_: '/[\\\\/]cli[\\\\/]/' });
  t.notOk(pattern(src), 'matched by the pattern tap was given');
  t.ok(pattern(dep), 'node_modules is only excluded by the default pattern');
  t.notOk(coveredByTap({ _TAPJS_PROCESSINFO_COV_EXCLUDE_: '/[/' })(dep), 'an unparsable pattern falls back to node_modules');
});

t.test('collectChildCoverage keeps covered scripts and their source maps, drops the rest, removes the directory', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'child-coverage-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'raw');
  const out = join(root, 'coverage');
  mkdirSync(dir);
  const script = (u: string) => ({ url: u, scriptId: '1', functions: [] });
  writeFileSync(
    join(dir, 'coverage-1-2-0.json'),
    JSON.stringify({
      result: [script('node:internal/main/run_main_module'), script(url(src)), script(url(helper)), script(url(dep))],
      'source-map-cache': { [url(src)]: { data: { version: 3 } }, [url(helper)]: { data: { version: 3 } } },
    }),
  );
  writeFileSync(join(dir, 'coverage-3-4-0.json'), JSON.stringify({ result: [script(url(dep))] }));
  writeFileSync(join(dir, 'coverage-5-6-0.json'), '{"result": [');
  writeFileSync(join(dir, 'coverage-7-8-0.json'), '{"something": "else"}');
  const stats = collectChildCoverage(dir, out, coveredByTap({ _TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_: helper }));
  t.same(stats, { files: 1, scripts: 1, skipped: 2 });
  t.same(readdirSync(out), ['child-coverage-1-2-0.json'], 'a file with nothing covered, a torn one and one that is not coverage are left out');
  const kept = JSON.parse(readFileSync(join(out, 'child-coverage-1-2-0.json'), 'utf8')) as { result: { url: string }[]; 'source-map-cache': Record<string, unknown> };
  t.same(kept.result.map((s) => s.url), [url(src)]);
  t.same(Object.keys(kept['source-map-cache']), [url(src)]);
  t.notOk(existsSync(dir), 'the raw directory is removed');
  t.same(collectChildCoverage(dir, out, () => true), { files: 0, scripts: 0, skipped: 0 }, 'a process that started no child has nothing to collect');
});

t.test('collectChildCoverage does not throw when the output cannot be written (it runs at exit)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'child-coverage-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'raw');
  mkdirSync(dir);
  writeFileSync(join(dir, 'coverage-1-2-0.json'), JSON.stringify({ result: [{ url: url(src), scriptId: '1', functions: [] }] }));
  const blocked = join(root, 'a-file');
  writeFileSync(blocked, '');
  t.same(collectChildCoverage(dir, join(blocked, 'coverage'), () => true), { files: 0, scripts: 0, skipped: 1 }, 'a file where the directory should be: counted, not thrown');
});
