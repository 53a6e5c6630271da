/**
 * The MQTT side of the ingest: a persistent MQTT 5 session with shared subscriptions
 * (`$share/<group>/<prefix>/+/result`, `.../event`, `.../telemetry`), so several ingest processes
 * split the fleet's messages, plus a plain subscription to `<prefix>/+/status` (every ingest needs
 * each device's retained birth/will, and the broker never sends retained messages to a shared
 * subscription). Each delivery becomes a record for the IngestWriter; its PUBACK is sent only after
 * the record's batch is committed.
 *
 * Why the PUBACK is held here and not in mqtt.js's `handleMessage`/`customHandleAcks` callbacks:
 * mqtt.js handles incoming packets strictly one at a time and sends the PUBACK as the last step of
 * handling a PUBLISH; holding either callback until a commit would hold every packet behind it,
 * i.e. one commit per message. So handling completes at once, and the PUBACK packet itself is held
 * (the client's packet writer is wrapped for `puback` of held ids) until the commit resolves.
 * mosquitto stops sending to this session once `receiveMaximum` deliveries are unacknowledged, and
 * where it does not (see handleMessage below) this process stops reading at that many records
 * awaiting commit: that window is all the memory a slow database can cost.
 *
 * A PUBACK whose connection has since dropped is not sent on the next one: the broker re-sends the
 * unacknowledged message with the same packet id, and it is acknowledged on its own (a duplicate
 * the database ignores), never by a stale PUBACK that could match a different message.
 * The session (clean: false, sessionExpiryInterval) keeps what arrives while the process is down.
 */
import mqtt, { type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { DEFAULT_PREFIX, fleetFilter, parseTopic } from '../../fleet/topics.js';
import { operatorClientOptions, refusedFilters, type BrokerAccess } from '../connection.js';
import { toRecord, type IngestRecord } from './records.js';
import type { IngestWriter } from './writer.js';

export interface MqttIngestOptions extends BrokerAccess {
  writer: IngestWriter;
  /** Shared subscription group; every ingest process of one fleet uses the same. Default `lvunet-ingest`. */
  group?: string;
  prefix?: string;
  /** Unacknowledged deliveries the broker may have outstanding to this process; default 1000. */
  receiveMaximum?: number;
  /** How long the broker keeps this session (and queues for it) while the process is down; default 7 days. */
  sessionExpiryS?: number;
  log?: (line: string) => void;
}

export interface MqttIngestStats {
  received: number;
  acked: number;
  /** Deliveries whose record is not committed (or whose PUBACK is not sent) yet. */
  unacked: number;
  /** PUBACKs not sent: the connection they belonged to had dropped (the broker re-sends), or a second one for an id already answered. */
  staleAcks: number;
  connects: number;
}

type SendPacket = (packet: Packet, cb?: () => void, cbStorePut?: () => void, noStore?: boolean) => void;

const SHARED_KINDS = ['result', 'event', 'telemetry'] as const;

export class MqttIngest {
  private client: MqttClient | undefined;
  /** Delivery id → its commit, until mqtt.js asks to send its PUBACK. */
  private readonly held = new Map<number, Promise<void>>();
  /** PUBACKs waiting for their commit. */
  private readonly acking = new Set<Promise<void>>();
  private readonly s: Omit<MqttIngestStats, 'unacked'> = { received: 0, acked: 0, staleAcks: 0, connects: 0 };
  private readonly prefix: string;

  constructor(private readonly o: MqttIngestOptions) {
    this.prefix = o.prefix ?? DEFAULT_PREFIX;
  }

  filters(): string[] {
    const group = this.o.group ?? 'lvunet-ingest';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(group)) throw new TypeError(`invalid shared subscription group ${JSON.stringify(group)}: use 1-64 of [A-Za-z0-9._-]`);
    return [...SHARED_KINDS.map((k) => `$share/${group}/${fleetFilter(k, this.prefix)}`), fleetFilter('status', this.prefix)];
  }

  stats(): MqttIngestStats {
    return { ...this.s, unacked: this.held.size + this.acking.size };
  }

  /** Connects and subscribes; resolves once the broker granted every subscription. */
  async start(): Promise<void> {
    const filters = this.filters();
    const client = mqtt.connect(
      this.o.url,
      operatorClientOptions(this.o, {
        clean: false,
        properties: { sessionExpiryInterval: this.o.sessionExpiryS ?? 7 * 86_400, receiveMaximum: this.o.receiveMaximum ?? 1000 },
        resubscribe: true,
      }),
    );
    this.client = client;
    this.holdPubacks(client);
    const highWater = this.o.receiveMaximum ?? 1000;
    client.handleMessage = (packet, done) => {
      const committed = this.onPublish(client, packet);
      // mosquitto 2.0.11 keeps to receiveMaximum only until the first PUBACKs: after them it may
      // send far more (eclipse-mosquitto/mosquitto#2301; seen here: 5 acknowledged, 18 more sent).
      // So the bound is also kept here: at the high-water mark, handling of this delivery ends
      // only once it is committed, mqtt.js reads no further packet meanwhile, and TCP pushes back
      // to the broker, which keeps the rest in its queue for this session.
      if (this.o.writer.stats().pending < highWater) done();
      else void committed.then(() => done(), () => done());
    };
    client.on('connect', () => {
      this.s.connects++;
    });
    client.on('error', (err) => this.o.log?.(`ingest: mqtt: ${err.message}`));
    client.on('offline', () => this.o.log?.('ingest: mqtt: offline, reconnecting'));
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        client.off('connect', ok);
        reject(new Error(`ingest: cannot connect to ${this.o.url}: ${err.message}`, { cause: err }));
      };
      const ok = (): void => {
        client.off('error', fail);
        resolve();
      };
      client.once('connect', ok);
      client.once('error', fail);
    }).catch(async (err: unknown) => {
      await client.endAsync(true);
      throw err;
    });
    const options = filters.map((f) => ({ [f]: { qos: 1 as const, rh: f.startsWith('$share/') ? 2 : 0 } }));
    const granted = await client.subscribeAsync(Object.assign({}, ...options) as Record<string, { qos: 1; rh: number }>);
    const refused = refusedFilters(filters, granted);
    if (refused.length > 0) {
      await client.endAsync(true);
      throw new Error(`ingest: the broker refused the subscription to ${refused.join(', ')} (check the ACL for ${this.o.clientId})`);
    }
  }

  /**
   * Stops: commits what was received, sends those PUBACKs, disconnects (the session stays on the
   * broker, which keeps queueing for it). What arrives meanwhile stays unacknowledged: sent again.
   */
  async close(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await Promise.allSettled([...this.held.values(), ...this.acking]);
    await client.endAsync(false);
    this.client = undefined;
  }

  /** Hands the delivery to the writer; resolves (never rejects) once it is committed or given up. */
  private onPublish(client: MqttClient, packet: IPublishPacket): Promise<unknown> {
    this.s.received++;
    const record = this.record(packet);
    const committed = this.o.writer.write(record);
    const settled = committed.catch(() => {});
    if (packet.qos === 0) {
      // Telemetry: nothing to acknowledge, and a reading lost with a failing database is stale anyway.
      return settled;
    }
    if (packet.messageId === undefined) return settled;
    // Connection this delivery arrived on: its PUBACK goes out on that one or not at all.
    const stream = client.stream;
    this.held.set(
      packet.messageId,
      committed.then(() => {
        if (client.stream !== stream || !client.connected) {
          this.s.staleAcks++;
          throw new Error('connection changed');
        }
      }),
    );
    return settled;
  }

  private record(packet: IPublishPacket): IngestRecord {
    const now = Date.now();
    const parsed = parseTopic(packet.topic, this.prefix);
    if (parsed === undefined || parsed.kind === 'cmd' || parsed.kind === 'reply') {
      const raw = typeof packet.payload === 'string' ? packet.payload : packet.payload.toString('utf8');
      return { kind: 'rejected', topic: packet.topic, reason: 'not a device stream topic of this fleet', raw, receivedAt: now };
    }
    return toRecord(parsed.kind, parsed.device, packet.topic, packet.payload, now);
  }

  private holdPubacks(client: MqttClient): void {
    const target = client as unknown as { _sendPacket: SendPacket };
    const send = target._sendPacket.bind(client);
    target._sendPacket = (packet, cb, cbStorePut, noStore) => {
      const id = packet.cmd === 'puback' ? packet.messageId : undefined;
      if (id === undefined) {
        send(packet, cb, cbStorePut, noStore);
        return;
      }
      const commit = this.held.get(id);
      if (commit === undefined) {
        // Every QoS 1 delivery registers its id before mqtt.js can acknowledge it, so this is a second
        // PUBACK for one id: a redelivery on a new connection replaced the first delivery's entry,
        // whose PUBACK already waits for the redelivery's commit. Sent now, it could acknowledge a
        // later message the broker gave that id before its commit: dropped.
        this.s.staleAcks++;
        cb?.();
        return;
      }
      this.held.delete(id);
      const acked = commit.then(
        () => {
          this.s.acked++;
          send(packet);
        },
        () => {},
      );
      this.acking.add(acked);
      void acked.finally(() => this.acking.delete(acked));
      // mqtt.js goes on to the next incoming packet now; the PUBACK follows the commit.
      cb?.();
    };
  }
}
