// The MQTT connection settings and the reconnect backoff, without a broker.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';

import { applyBackoff, clientOptions, type ConnectionSettings } from '../../../src/fleet/link/connection.js';

const base: ConnectionSettings = {
  clientId: 'cart-1',
  protocolVersion: 5,
  keepaliveS: 30,
  reconnectMinMs: 1000,
  connectTimeoutMs: 10_000,
  will: { topic: 'lvunet/cart-1/status', payload: '{"state":"offline"}' },
};

t.test('a clean session, the retained QoS 1 will, no credentials or TLS unless given', async (t) => {
  const o = clientOptions(base);
  t.match(o, { clientId: 'cart-1', protocolVersion: 5, clean: true, keepalive: 30, reconnectPeriod: 1000, connectTimeout: 10_000, resubscribe: false });
  t.match(o.will, { topic: 'lvunet/cart-1/status', qos: 1, retain: true });
  t.equal(o.will?.payload.toString(), '{"state":"offline"}');
  for (const key of ['username', 'password', 'ca', 'cert', 'key', 'rejectUnauthorized']) t.notOk(key in o, `no ${key}`);
});

t.test('failover brokers: every node of a cluster in turn, never a scheme other than the main URL', async (t) => {
  t.notOk('servers' in clientOptions({ ...base, url: 'mqtts://nats-1:8883', failover: [] }), 'no rotation without failover nodes');
  const o = clientOptions({ ...base, url: 'mqtts://nats-1.lan:8883', failover: ['mqtts://nats-2.lan:18883', 'mqtts://nats-3.lan'] });
  t.same(o.servers, [
    { host: 'nats-1.lan', port: 8883, protocol: 'mqtts' },
    { host: 'nats-2.lan', port: 18883, protocol: 'mqtts' },
    { host: 'nats-3.lan', port: 8883, protocol: 'mqtts' },
  ]);
  t.throws(() => clientOptions({ ...base, url: 'mqtts://nats-1:8883', failover: ['mqtt://nats-2:1883'] }), /failover broker mqtt:\/\/nats-2:1883 uses mqtt:\/\/ but mqtts:\/\/nats-1:8883 uses mqtts:\/\//);
  t.throws(() => clientOptions({ ...base, url: 'wss://nats-1/mqtt', failover: ['wss://nats-2/mqtt'] }), /failover needs mqtt:\/\/ or mqtts:\/\//);
  t.throws(() => clientOptions({ ...base, failover: ['mqtt://nats-2:1883'] }), /need the main broker URL/);
});

t.test('TLS files are read at once; certificate checking stays on unless turned off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-conn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['ca.pem', 'c.crt', 'c.key']) writeFileSync(join(dir, f), `${f} bytes`);
  const o = clientOptions({ ...base, username: 'u', password: 'p', tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'c.crt'), key: join(dir, 'c.key'), servername: 'broker.lan' } });
  t.equal(String(o.ca), 'ca.pem bytes');
  t.equal(String(o.cert), 'c.crt bytes');
  t.equal(String(o.key), 'c.key bytes');
  t.match(o, { username: 'u', password: 'p', servername: 'broker.lan', rejectUnauthorized: true });
  t.equal(clientOptions({ ...base, tls: { rejectUnauthorized: false } }).rejectUnauthorized, false);
  t.throws(() => clientOptions({ ...base, tls: { ca: join(dir, 'missing.pem') } }), /missing\.pem/);
});

t.test('each drop sets the next reconnect period before mqtt.js arms its timer', async (t) => {
  const client = Object.assign(new EventEmitter(), { options: { reconnectPeriod: 1000 } });
  let attempts = 0;
  const order: string[] = [];
  client.on('close', () => order.push(`mqtt.js sees ${client.options.reconnectPeriod}`));
  applyBackoff(client as unknown as MqttClient, 1000, 4000, () => attempts, () => {
    attempts++;
    order.push('link told');
  });
  for (let i = 0; i < 4; i++) client.emit('close');
  t.equal(attempts, 4);
  t.equal(order.length, 8);
  const periods = order.filter((x) => x.startsWith('mqtt.js')).map((x) => Number(x.split(' ').pop()));
  // Jitter is ±25 % around 1, 2, 4, 4 s.
  for (const [i, nominal] of [1000, 2000, 4000, 4000].entries()) t.ok(periods[i] >= nominal * 0.75 && periods[i] <= nominal * 1.25, `drop ${i + 1}: ${periods[i]} ms`);
  t.equal(order[0], 'link told', 'the link is told before mqtt.js handles the close');
});
