// A TCP relay between a client under test and a broker, so a test can cut the network the way a
// pulled cable does (both sockets destroyed, no MQTT DISCONNECT: the broker publishes the will)
// without the client offering a test-only way to do it.
import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The broker URL with the relay's port: what the client under test connects to. */
  readonly url: string;
  /** Destroys every relayed connection; new ones are relayed as before. */
  cut(): void;
  /**
   * Swallows the next `n` MQTT SUBSCRIBE packets from the client (a broker that never answers one),
   * relaying everything else; returns how many have been swallowed so far.
   */
  swallowSubscribes(n: number): void;
  readonly swallowed: number;
  close(): Promise<void>;
}

export async function startProxy(brokerUrl: string): Promise<TcpProxy> {
  const target = new URL(brokerUrl);
  let toSwallow = 0;
  let swallowed = 0;
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
    // Client → broker goes through an MQTT framer so whole SUBSCRIBE packets can be left out.
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        // Fixed header: type/flags byte, then the remaining length as a 1-4 byte varint.
        let length = 0;
        let multiplier = 1;
        let i = 1;
        let complete = false;
        for (; i < Math.min(pending.length, 5); i++) {
          length += (pending[i] & 0x7f) * multiplier;
          multiplier *= 128;
          if ((pending[i] & 0x80) === 0) {
            complete = true;
            break;
          }
        }
        if (!complete || pending.length < i + 1 + length) break;
        const packet = pending.subarray(0, i + 1 + length);
        pending = pending.subarray(i + 1 + length);
        if (pending[0] === undefined) pending = Buffer.alloc(0);
        if (packet[0] >> 4 === 8 && toSwallow > 0) {
          toSwallow--;
          swallowed++;
          continue;
        }
        upstream.write(packet);
      }
    });
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
    swallowSubscribes: (n: number) => {
      toSwallow += n;
    },
    get swallowed() {
      return swallowed;
    },
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
