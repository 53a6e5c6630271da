import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { keysTableMarkdown } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/paths.js';

t.test('deploy/config/README.md carries the current keys table', async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'deploy', 'config', 'README.md'), 'utf8');
  const table = keysTableMarkdown();
  t.ok(readme.includes(`## Keys\n\n${table}\n`), 'regenerate the table with keysTableMarkdown() after a schema change');
});
