import t from 'tap';
import { DeviceTopics, fleetFilter, isValidDeviceId, parseTopic } from '../../src/fleet/topics.js';

t.test('builds the layout of deploy/mosquitto/acl', async (t) => {
  const d = new DeviceTopics('cart-001');
  t.equal(d.status, 'lvunet/cart-001/status');
  t.equal(d.result, 'lvunet/cart-001/result');
  t.equal(d.telemetry, 'lvunet/cart-001/telemetry');
  t.equal(d.event, 'lvunet/cart-001/event');
  t.equal(d.commandFilter, 'lvunet/cart-001/cmd/+');
  t.equal(d.command('set-threshold'), 'lvunet/cart-001/cmd/set-threshold');
  t.equal(d.reply('set-threshold'), 'lvunet/cart-001/cmd/set-threshold/reply');
  t.equal(new DeviceTopics('k1', 'site-a/lvunet').result, 'site-a/lvunet/k1/result');
  t.equal(fleetFilter('result'), 'lvunet/+/result');
  t.equal(fleetFilter('cmd/+/reply', 'x'), 'x/+/cmd/+/reply');
});

t.test('device ids that would escape the ACL are refused', async (t) => {
  for (const bad of ['', 'a/b', 'a+', '#', 'cart 1', 'a\0b', 'x'.repeat(129), 'ü']) {
    t.notOk(isValidDeviceId(bad), JSON.stringify(bad));
    t.throws(() => new DeviceTopics(bad), /invalid device id/);
  }
  for (const good of ['cart-001', 'kiosk.ward3', 'A_b-9']) t.ok(isValidDeviceId(good));
  t.throws(() => new DeviceTopics('a', 'lv/+'), /invalid topic prefix/);
  t.throws(() => new DeviceTopics('a', 'lv//x'), /invalid topic prefix/);
  t.throws(() => new DeviceTopics('a').command('a/b'), /invalid command name/);
  t.throws(() => new DeviceTopics('a').reply('#'), /invalid command name/);
});

t.test('parses every topic kind and nothing else', async (t) => {
  t.same(parseTopic('lvunet/cart-1/result'), { prefix: 'lvunet', device: 'cart-1', kind: 'result' });
  t.same(parseTopic('lvunet/cart-1/cmd/snapshot'), { prefix: 'lvunet', device: 'cart-1', kind: 'cmd', command: 'snapshot' });
  t.same(parseTopic('lvunet/cart-1/cmd/snapshot/reply'), {
    prefix: 'lvunet',
    device: 'cart-1',
    kind: 'reply',
    command: 'snapshot',
  });
  t.same(parseTopic('a/b/c/status', 'a/b'), { prefix: 'a/b', device: 'c', kind: 'status' });
  for (const bad of [
    'other/cart-1/result',
    'lvunet/cart-1/results',
    'lvunet/cart-1/result/x',
    'lvunet/cart+1/result',
    'lvunet/cart-1/cmd',
    'lvunet/cart-1/cmd//reply',
    'lvunet/cart-1/cmd/a/b',
    'lvunet/cart-1',
    'lvunet',
  ]) {
    t.equal(parseTopic(bad), undefined, bad);
  }
});
