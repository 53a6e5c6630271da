import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
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

t.test('systemd-analyze verify accepts the kiosk unit beside the runtime unit, ordered after it and waiting on /healthz', async (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    t.fail('systemd-analyze is not installed (apt-get install systemd)');
    return;
  }
  const dir = t.testdir({});
  const kiosk = join(REPO_ROOT, 'deploy', 'kiosk', 'lvunet-kiosk.service');
  // verify resolves Requires= by name: both units side by side.
  for (const f of [kiosk, UNIT]) writeFileSync(join(dir, basename(f)), readFileSync(f));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'lvunet-kiosk.service'), join(dir, 'lvunet-edge.service')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
  const unit = readFileSync(kiosk, 'utf8').split('\n');
  for (const line of ['Requires=lvunet-edge.service', 'After=lvunet-edge.service', 'PartOf=lvunet-edge.service', 'ExecStartPre=', 'ExecStart=/usr/bin/chromium --kiosk']) {
    t.ok(unit.some((l) => l.startsWith(line)), line);
  }
  t.ok(unit.some((l) => l.startsWith('ExecStartPre=') && l.includes('"$LVUNET_HEALTH_URL"')), 'waits for /healthz at its own address');
  t.notOk(unit.some((l) => l.startsWith('ExecStartPre=') && l.includes('LVUNET_VIEW_URL')), 'not at the page\'s address, which may carry ?token=');
  t.ok(unit.includes('Environment=LVUNET_HEALTH_URL=http://127.0.0.1:8080/healthz'), 'the health address defaults to /healthz');
  t.ok(unit.some((l) => l.startsWith('Environment=DISPLAY=')), 'chromium gets a display');
});
