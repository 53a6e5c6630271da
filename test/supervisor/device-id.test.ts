// How `run` picks the device id (issue 18, finding 2): never silently the host name.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveDeviceId } from '../../src/supervisor/run-supervised.js';
import { REPO_ROOT } from '../helpers/paths.js';

const DEPLOY = path.join(REPO_ROOT, 'deploy', 'mosquitto');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lvunet-devid-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
await promisify(execFile)(path.join(DEPLOY, 'make-certs.sh'), [tmp, 'cart-a']);
const cert = path.join(tmp, 'cart-a.crt');

t.test('an explicit device.id is used as given (FleetLink.start checks it against the certificate)', async (t) => {
  const lines: string[] = [];
  t.equal(resolveDeviceId('cart-9', 'file /etc/lvunet/cart.yaml', cert, (l) => lines.push(l)), 'cart-9');
  t.same(lines, []);
});

t.test('unset, with a client certificate: the certificate CN, logged', async (t) => {
  const lines: string[] = [];
  t.equal(resolveDeviceId('build-host-7', 'default', cert, (l) => lines.push(l)), 'cart-a');
  t.match(lines, [/device\.id is not set: using "cart-a", the CN of the client certificate/]);
});

t.test('unset, without a certificate: the host name, with a loud warning', async (t) => {
  const lines: string[] = [];
  t.equal(resolveDeviceId('build-host-7', 'default', undefined, (l) => lines.push(l)), 'build-host-7');
  t.match(lines, [/^WARNING: device\.id is not set: using the host name "build-host-7"/]);
});
