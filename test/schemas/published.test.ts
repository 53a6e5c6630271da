import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { validateCommand, validateReply, validateResult } from '../../src/fleet/schemas.js';
import { schemaFiles } from '../../src/schemas/index.js';
import { resultV1 } from '../../src/schemas/result.js';
import { sampleBody, sampleResult } from '../fleet/fixtures.js';
import { REPO_ROOT } from '../helpers/paths.js';

const dir = join(REPO_ROOT, 'docs', 'schemas');

t.test('docs/schemas/*.json are exactly what the definitions produce (run `npm run schemas` after a change)', async (t) => {
  const expected = schemaFiles();
  const committed = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  t.same(committed, [...expected.keys()].sort(), 'no file missing, none left over');
  for (const [file, text] of expected) {
    let onDisk = '';
    try {
      onDisk = readFileSync(join(dir, file), 'utf8');
    } catch {
      // reported by the listing above
    }
    t.ok(onDisk === text, `${file} is up to date`);
  }
});

t.test('every published file compiles under Ajv strict mode (no keyword a consumer would have to ignore)', async (t) => {
  const ajv = new Ajv({ strict: true, allErrors: true });
  for (const file of schemaFiles().keys()) {
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as object;
    t.doesNotThrow(() => ajv.compile(schema), file);
  }
});

t.test('the published files and the device validators agree, value by value', async (t) => {
  const ajv = new Ajv({ strict: true, allErrors: true });
  const load = (file: string) => ajv.compile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as object);
  const result = sampleResult(3);
  const cases: Array<[string, (v: unknown) => { ok: boolean }, unknown, boolean]> = [
    ['result-message.json', validateResult, result, true],
    ['result-message.json', validateResult, { ...result, rle: { size: [480, 640], counts: [0, 307200] } }, true],
    ['result-message.json', validateResult, { ...result, rle: { size: [640], counts: [0] } }, false],
    ['result-message.json', validateResult, { ...result, seq: -1 }, false],
    ['result-message.json', validateResult, { ...result, colour: 'red' }, false],
    ['result-message.json', validateResult, { ...result, captureTime: '2026-11-25 23:00' }, false],
    ['result.json', (v) => resultV1.validate(v), sampleBody(1), true],
    ['result.json', (v) => resultV1.validate(v), result, false],
    ['cmd-reload-model.json', (v) => validateCommand('reload-model', v), { id: 'r', url: 'https://fleet/b' }, true],
    ['cmd-reload-model.json', (v) => validateCommand('reload-model', v), { id: 'r', rollback: true }, true],
    ['cmd-reload-model.json', (v) => validateCommand('reload-model', v), { id: 'r', rollback: true, path: '/b' }, false],
    ['cmd-reload-model.json', (v) => validateCommand('reload-model', v), { id: 'r' }, false],
    ['cmd-reload-model.json', (v) => validateCommand('reload-model', v), { id: 'r', url: 'ftp://b' }, false],
    ['cmd-set-threshold.json', (v) => validateCommand('set-threshold', v), { id: 'a', value: 0.5 }, true],
    ['cmd-set-threshold.json', (v) => validateCommand('set-threshold', v), { id: 'a', value: 1.5 }, false],
    ['reply.json', validateReply, { schema: 'lvunet-edge/reply@1', id: null, ok: false, error: 'x' }, true],
    ['reply.json', validateReply, { schema: 'lvunet-edge/reply@1', id: 'a', ok: false }, false],
    ['reply.json', validateReply, { schema: 'lvunet-edge/reply@1', id: 'a', ok: true, result: { any: 1 } }, true],
  ];
  for (const [file, device, value, ok] of cases) {
    const published = load(file);
    t.equal(device(value).ok, ok, `device validator, ${file}: ${JSON.stringify(value).slice(0, 80)}`);
    t.equal(published(value), ok, `published ${file}: ${JSON.stringify(value).slice(0, 80)}`);
  }
});
