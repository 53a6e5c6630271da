import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

const UNIT = join(REPO_ROOT, 'deploy', 'systemd', 'lvunet-edge.service');

t.test('systemd-analyze verify accepts the unit', async (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    t.fail('systemd-analyze is not installed (apt-get install systemd)');
    return;
  }
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
});

t.test('the unit has the notify type, watchdog, restart policy and hardening the runtime relies on', async (t) => {
  const unit = readFileSync(UNIT, 'utf8');
  for (const line of [
    'Type=notify',
    'WatchdogSec=',
    'Restart=on-failure',
    'User=lvunet-edge',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'PrivateTmp=yes',
    'DeviceAllow=char-video4linux rw',
    'StateDirectory=lvunet-edge',
    'ConfigurationDirectory=lvunet-edge',
  ]) {
    t.ok(unit.split('\n').some((l) => l.startsWith(line)), line);
  }
});
