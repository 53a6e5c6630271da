/**
 * Loaded into every test process (package.json tap.node-arg): each process a test starts gets
 * childEnv()'s environment, i.e. no tap process-info hook. Registered after tap's own process-on-spawn
 * listener (NODE_OPTIONS imports run before command-line ones), so it sees and undoes what that adds.
 */
import processOnSpawn from 'process-on-spawn';

import { childEnv } from './child-env.js';

processOnSpawn.addListener((child) => {
  child.env = childEnv(child.env);
});
