/**
 * `fleet send` and the rollout runner's way to talk to devices: commands on
 * `<prefix>/<device>/cmd/<name>` (QoS 1, never retained), replies matched by request id on
 * `<prefix>/<device>/cmd/<name>/reply`, each with a timeout. Every command and its reply is recorded
 * in the database (`commands`), so a reply that comes late or to another process is not lost track of.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { isCommandName, validateCommand, validateReply, type CommandName, type CommandReply } from '../fleet/schemas.js';
import { DEFAULT_PREFIX, DeviceTopics, fleetFilter, parseTopic } from '../fleet/topics.js';
import { operatorClientOptions, refusedFilters, type BrokerAccess } from './connection.js';
import type { FleetDb } from './db/fleet-db.js';

export interface CommandOutcome {
  device: string;
  id: string;
  /** undefined: no reply within the timeout. */
  reply?: CommandReply;
  /** Set when the broker refused the command (e.g. not authorised) or it could not be sent. */
  error?: string;
}

export function newCommandId(prefix = 'op'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export class CommandClient {
  private readonly waiting = new Map<string, (reply: CommandReply) => void>();

  private constructor(
    private readonly client: MqttClient,
    private readonly prefix: string,
    private readonly db: FleetDb | undefined,
  ) {
    client.on('message', (topic, payload, packet) => {
      // A retained "reply" is not an answer to anything sent now.
      if (packet.retain) return;
      const parsed = parseTopic(topic, prefix);
      if (parsed?.kind !== 'reply') return;
      let value: unknown;
      try {
        value = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      const checked = validateReply(value);
      if (!checked.ok || checked.value.id === null) return;
      this.waiting.get(`${parsed.device}\n${checked.value.id}`)?.(checked.value);
    });
  }

  /** Connects (clean session: replies to an earlier process's commands are not this one's) and subscribes to replies. */
  static async connect(access: BrokerAccess, options: { prefix?: string; db?: FleetDb } = {}): Promise<CommandClient> {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    const client = mqtt.connect(access.url, operatorClientOptions(access, { clean: true }));
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', (err) => reject(new Error(`cannot connect to ${access.url}: ${err.message}`, { cause: err })));
      });
      const filter = fleetFilter('cmd/+/reply', prefix);
      const granted = await client.subscribeAsync(filter, { qos: 1 });
      if (refusedFilters([filter], granted).length > 0) throw new Error(`the broker refused the subscription to ${filter} (check the ACL for ${access.clientId})`);
    } catch (err) {
      await client.endAsync(true);
      throw err;
    }
    return new CommandClient(client, prefix, options.db);
  }

  /** Sends `name` with `args` (the payload without `id`) to one device and waits for its reply. */
  async send(device: string, name: string, args: Record<string, unknown>, timeoutMs: number, id: string = newCommandId()): Promise<CommandOutcome> {
    if (!isCommandName(name)) throw new TypeError(`unknown command ${JSON.stringify(name)}`);
    const payload = { id, ...args };
    const checked = validateCommand(name as CommandName, payload);
    if (!checked.ok) throw new TypeError(`invalid ${name} command: ${checked.errors.join('; ')}`);
    const topic = new DeviceTopics(device, this.prefix).command(name);
    const key = `${device}\n${id}`;
    let timer: NodeJS.Timeout | undefined;
    const replied = new Promise<CommandReply | undefined>((resolve) => {
      timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(key, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(reply);
      });
    });
    await this.db?.commandSent({ id, device, name, payload });
    try {
      await this.client.publishAsync(topic, JSON.stringify(payload), { qos: 1, retain: false });
    } catch (err) {
      clearTimeout(timer);
      this.waiting.delete(key);
      return { device, id, error: `the broker refused ${name} to ${device}: ${(err as Error).message}` };
    }
    const reply = await replied;
    if (reply) await this.db?.commandReplied(id, reply);
    return reply ? { device, id, reply } : { device, id };
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

/** One line per outcome, for the CLI. */
export function describeOutcome(o: CommandOutcome): string {
  if (o.error !== undefined) return `${o.device}: ERROR ${o.error}`;
  if (!o.reply) return `${o.device}: TIMEOUT no reply to ${o.id}`;
  if (!o.reply.ok) return `${o.device}: FAILED ${o.reply.error ?? ''}`;
  return `${o.device}: ok ${JSON.stringify(o.reply.result ?? null)}`;
}
