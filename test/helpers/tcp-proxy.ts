// A TCP relay between a client under test and a broker, so a test can cut the network the way a
// pulled cable does (both sockets destroyed, no MQTT DISCONNECT: the broker publishes the will)
// without the client offering a test-only way to do it.
import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The broker URL with the relay's port: what the client under test connects to. */
  readonly url: string;
  /** Destroys every relayed connection; new ones are relayed as before. */
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy(brokerUrl: string): Promise<TcpProxy> {
  const target = new URL(brokerUrl);
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no TCP port');
  const url = `${target.protocol}//127.0.0.1:${address.port}`;
  const cut = (): void => {
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    url,
    cut,
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
