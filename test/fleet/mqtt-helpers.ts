// Test helpers for the fleet tests: an operator-side client that records what it receives.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  at: number;
}

export interface Recorder {
  client: MqttClient;
  messages: Received[];
  /** Resolves once pred holds over what was received (checked on every message); rejects after timeoutMs. */
  until(pred: (messages: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function recorder(url: string, filters: string[], options: IClientOptions = {}): Promise<Recorder> {
  const client = mqtt.connect(url, { reconnectPeriod: 200, connectTimeout: 5_000, ...options });
  const messages: Received[] = [];
  const checks = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, retain: packet.retain, at: Date.now() });
    for (const c of [...checks]) c();
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(filters, { qos: 1 });
  return {
    client,
    messages,
    until(pred, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pred(messages)) return;
          clearTimeout(timer);
          checks.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${messages.length} messages received)`));
        }, timeoutMs);
        checks.add(check);
        check();
      });
    },
    async close() {
      await client.endAsync(true);
    },
  };
}

export function json(m: Received): Record<string, unknown> {
  return JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
