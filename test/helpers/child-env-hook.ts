/**
 * Loaded into every test process (package.json tap.node-arg): each process a test starts gets
 * childEnv()'s environment, i.e. no tap process-info hook. tap puts processinfo's own `--import`
 * before the node-arg ones on the test's command line, so processinfo's process-on-spawn listener is
 * registered first and this one, running after it, sees and undoes what it adds. Were the order ever
 * reversed, processinfo would put its hook back silently: hence the check below. While tap collects
 * coverage, what the children wrote is filtered into tap's directory when this process exits.
 */
import processOnSpawn from 'process-on-spawn';

import { childCoverageDir, collectChildCoverage, coveredByTap, TAP_COVERAGE_DIR } from './child-coverage.js';
import { childEnv } from './child-env.js';

if (process.env._TAPJS_PROCESSINFO_COVERAGE_ !== undefined && !(Symbol.for('@tapjs/processinfo.ProcessInfoNodeData') in globalThis)) {
  throw new Error('test/helpers/child-env-hook: loaded before @tapjs/processinfo; its spawn listener would run after this one and undo it');
}

processOnSpawn.addListener((child) => {
  child.env = childEnv(child.env);
});

// The children's raw V8 coverage, filtered into tap's directory once no more children can start.
if (process.env._TAPJS_PROCESSINFO_COVERAGE_ === '1') {
  const covered = coveredByTap(process.env);
  process.on('exit', () => collectChildCoverage(childCoverageDir(), TAP_COVERAGE_DIR, covered));
}
