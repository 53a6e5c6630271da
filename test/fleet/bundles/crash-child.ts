// Child process for store.test.ts: installs a bundle and SIGKILLs itself at a switch point, which is
// what a power cut looks like to the store (no catch blocks, no cleanup). Run by tap without
// arguments it does nothing.
import { ModelStore, type SwitchPoint } from '../../../src/fleet/bundles/store.js';
import { createOrtRunner } from '../../../src/fleet/bundles/ort-runner.js';

const [stateDir, pubkey, source, point] = process.argv.slice(2);
if (stateDir !== undefined) {
  const store = await ModelStore.open({
    stateDir,
    trustedKeys: [pubkey],
    runModel: createOrtRunner(),
    onSwitchPoint: (p: SwitchPoint) => {
      if (p === point) process.kill(process.pid, 'SIGKILL');
    },
  });
  await store.install(source);
  process.stdout.write('installed without crashing\n');
}
