// The test broker helper itself: a port taken between freePort() and mosquitto's bind (another test
// file got it) makes it start again on a fresh port; a port the caller fixed is not changed.
import t from 'tap';
import { createServer, type Server } from 'node:net';

import { findMosquitto, freePort, freePorts, startBroker } from '../helpers/mosquitto.js';

t.test('freePorts gives distinct ports (the NATS cluster takes twelve at once)', async (t) => {
  const ports = await freePorts(64);
  t.equal(ports.length, 64);
  t.equal(new Set(ports).size, 64, 'no port twice');
  t.ok(ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536));
});

if (!findMosquitto()) {
  t.test('the broker tests', { skip: 'mosquitto is not installed (apt-get install mosquitto)' }, () => {});
} else {
  const occupy = async (): Promise<{ server: Server; port: number }> => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return { server, port: address.port };
  };

  t.test('a chosen port that is taken by the time mosquitto binds it: started again on a fresh one', async (t) => {
    const taken = await occupy();
    const picked: number[] = [];
    const broker = await startBroker({
      t,
      pickPort: async (host) => {
        const port = picked.length === 0 ? taken.port : await freePort(host);
        picked.push(port);
        return port;
      },
    });
    t.equal(picked.length, 2, 'a second port was picked');
    t.equal(picked[0], taken.port);
    t.equal(broker.port, picked[1], 'the broker runs on the second');
    t.not(broker.port, taken.port);
    t.match(broker.logs(), /mosquitto version \S+ running/);
  });

  t.test('a port the caller fixed is not changed: the bind error is reported', async (t) => {
    const taken = await occupy();
    await t.rejects(startBroker({ t, port: taken.port }), /mosquitto exited during start-up[\s\S]*[Aa]ddress already in use/);
  });

  t.test('other start-up errors are not retried', async (t) => {
    let picks = 0;
    await t.rejects(
      startBroker({ t, extraConfig: 'no_such_option 1', pickPort: (host) => (picks++, freePort(host)) }),
      /mosquitto exited during start-up/,
    );
    t.equal(picks, 1, 'one attempt');
  });
}
