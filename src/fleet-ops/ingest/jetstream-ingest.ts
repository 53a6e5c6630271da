/**
 * The NATS side of the ingest: pulls the devices' QoS 1 messages from nats-server's replicated
 * MQTT message stream (jetstream-stream.ts says why that one) through one durable consumer that
 * every ingest process shares, turns each into a record for the same IngestWriter the MQTT ingest
 * feeds, and acknowledges a message only after its record's batch is committed.
 *
 * Why the native consumer and not MQTT shared subscriptions: nats-server speaks MQTT 3.1.1, which
 * has no shared subscriptions, so several MQTT ingest processes would each get every message. A
 * durable pull consumer splits the stream between its pullers, keeps each message until one of
 * them acknowledges it, hands it to another when `ack_wait` passes, and survives the loss of a
 * node (its state is replicated like the stream). Nothing on top is needed for exactly-once rows:
 * at-least-once delivery here plus the (device, seq) key in the database.
 *
 * A message's subject is `$MQTT.msgs.` and its MQTT topic with `/` as `.`
 * (`$MQTT.msgs.lvunet.cart-001.result`); device ids on a NATS fleet contain no `.` (nats-server
 * 2.9 refuses MQTT topics with one), so the mapping back is exact.
 *
 * Telemetry is QoS 0, which the server does not store: it is read live from `<prefix>.*.telemetry`
 * with a NATS queue subscription (the server hands each message to one ingest process), at most
 * once, as MQTT QoS 0 promises; a reading missed while every ingest is down is stale anyway.
 */
import { readFileSync } from 'node:fs';
import { connect, type ConsumerMessages, type JsMsg, type Msg, type NatsConnection, type ConnectionOptions, type Subscription } from 'nats';
import type { TlsFiles } from '../../fleet/publisher.js';
import { DEFAULT_PREFIX, parseTopic } from '../../fleet/topics.js';
import { checkMqttStream, INGEST_DURABLE, ingestConsumerConfig, MQTT_STREAM, MQTT_STREAM_SUBJECT_PREFIX, subjectPrefix } from './jetstream-stream.js';
import { toRecord, type IngestRecord } from './records.js';
import type { IngestWriter } from './writer.js';

const JS_API_TIMEOUT_MS = 15_000;

export interface JetStreamIngestOptions {
  /** nats://host:port or tls://host:port of the cluster's nodes; the client fails over between them. */
  servers: readonly string[];
  /** Mutual TLS (deploy/nats: the certificate subject is the NATS user). */
  tls?: TlsFiles;
  /** Name shown in the server's connection list. */
  name?: string;
  writer: IngestWriter;
  prefix?: string;
  /** Deliveries awaiting acknowledgement, over all ingest processes; default 2000. */
  maxAckPending?: number;
  /** Default 30 s. */
  ackWaitMs?: number;
  /** How long start() keeps trying while the MQTT stream is missing or JetStream does not answer; default 5 min. */
  streamWaitMs?: number;
  /** NATS queue group for the live telemetry subscription; every ingest process of a fleet uses the same. Default `lvunet-ingest`. */
  queueGroup?: string;
  /** Messages requested per pull; default 500. */
  batch?: number;
  log?: (line: string) => void;
}

export interface JetStreamIngestStats {
  received: number;
  acked: number;
  /** Deliveries whose record is not committed (so not acknowledged) yet. */
  unacked: number;
  /** Deliveries JetStream sent more than once (this process or another did not acknowledge in time). */
  redelivered: number;
  /** Commands and replies (QoS 1 under the prefix too): acknowledged without a row. */
  skipped: number;
  /** Telemetry messages taken from the live subjects. */
  telemetry: number;
  /** Connection drops (a node lost, the client moved to another). */
  reconnects: number;
}

export class JetStreamIngest {
  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  private telemetrySub: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly s = { received: 0, acked: 0, redelivered: 0, skipped: 0, telemetry: 0, reconnects: 0 };
  private readonly prefix: string;
  private readonly subjectPrefix: string;
  /** Records waiting in the writer at which pulling pauses: the consumer's max_ack_pending. */
  private readonly highWater: number;

  constructor(private readonly o: JetStreamIngestOptions) {
    this.prefix = o.prefix ?? DEFAULT_PREFIX;
    this.subjectPrefix = subjectPrefix(this.prefix);
    this.highWater = o.maxAckPending ?? 2000;
    if (o.servers.length === 0) throw new TypeError('JetStream ingest: give at least one NATS server URL');
  }

  stats(): JetStreamIngestStats {
    return { ...this.s, unacked: this.pending.size };
  }

  /** Connects, makes sure the stream and the consumer exist, and starts pulling. */
  async start(): Promise<void> {
    const options: ConnectionOptions = {
      servers: [...this.o.servers],
      name: this.o.name ?? 'lvunet-ingest',
      // Keep trying for ever: a cluster restart must not end the ingest.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    };
    const tls = this.o.tls;
    if (tls) {
      const read = (what: string, file: string | undefined): string | undefined => {
        if (file === undefined) return undefined;
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          throw new Error(`cannot read the ${what} ${file}: ${(err as Error).message}`, { cause: err });
        }
      };
      options.tls = { ca: read('CA certificate', tls.ca), cert: read('client certificate', tls.cert), key: read('client key', tls.key) };
    }
    let nc: NatsConnection;
    try {
      nc = await connect(options);
    } catch (err) {
      throw new Error(`ingest: cannot connect to NATS ${this.o.servers.join(', ')}: ${(err as Error).message}`, { cause: err });
    }
    let replicas: number;
    try {
      // JetStream API calls wait up to 15 s: creating a replicated consumer while the cluster is
      // busy or electing leaders takes longer than the client's default 5 s.
      const jsm = await nc.jetstreamManager({ timeout: JS_API_TIMEOUT_MS });
      replicas = await this.retrying(() => checkMqttStream(jsm));
      // Adding an existing durable with the same configuration is a no-op, so every process does it.
      await this.retrying(() => jsm.consumers.add(MQTT_STREAM, ingestConsumerConfig(this.prefix, this.highWater, this.o.ackWaitMs ?? 30_000)));
      const consumer = await this.retrying(() => nc.jetstream({ timeout: JS_API_TIMEOUT_MS }).consumers.get(MQTT_STREAM, INGEST_DURABLE));
      this.messages = await consumer.consume({ max_messages: this.o.batch ?? 500 });
    } catch (err) {
      await nc.close();
      throw new Error(`ingest: JetStream stream ${MQTT_STREAM} / consumer ${INGEST_DURABLE}: ${(err as Error).message}`, { cause: err });
    }
    this.nc = nc;
    void this.watchStatus(nc);
    this.telemetrySub = nc.subscribe(`${this.subjectPrefix}.*.telemetry`, { queue: this.o.queueGroup ?? 'lvunet-ingest', callback: (err, m) => this.onTelemetry(err, m) });
    this.o.log?.(`ingest: JetStream stream ${MQTT_STREAM} (${replicas} replicas), durable consumer ${INGEST_DURABLE}`);
    this.loop = this.pull(this.messages);
  }

  /**
   * Stops pulling, waits until what was received is committed and acknowledged, and disconnects.
   * Deliveries still on their way when the pull stops are not acknowledged: JetStream gives them
   * to another puller after ack_wait.
   */
  async close(): Promise<void> {
    const nc = this.nc;
    if (!nc) return;
    this.telemetrySub?.unsubscribe();
    await this.messages?.close();
    await this.loop;
    await Promise.allSettled([...this.pending]);
    // drain(): the acknowledgements just queued reach the server before the connection closes.
    await nc.drain();
    this.nc = undefined;
  }

  /**
   * Retries `step` while the answer is "not yet": the server's MQTT stream does not exist (no MQTT
   * client connected so far), or the JetStream API timed out or had no responder (a leader being
   * elected). Anything else, or still failing after `streamWaitMs`, is thrown.
   */
  private async retrying<T>(step: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.o.streamWaitMs ?? 300_000);
    let told = false;
    for (;;) {
      try {
        return await step();
      } catch (err) {
        const message = (err as Error).message;
        if (!/does not exist yet|timeout|no responders|503/i.test(message) || Date.now() > deadline) throw err;
        if (!told) this.o.log?.(`ingest: ${message}; retrying`);
        told = true;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private onTelemetry(err: Error | null, m: Msg): void {
    if (err) {
      this.o.log?.(`ingest: telemetry subscription: ${err.message}`);
      return;
    }
    const topic = m.subject.replaceAll('.', '/');
    const parsed = parseTopic(topic, this.prefix);
    if (parsed?.kind !== 'telemetry') return;
    this.s.telemetry++;
    // Over the window the reading is dropped: the next one (seconds later) replaces it anyway.
    if (this.o.writer.stats().pending >= this.highWater) return;
    // Nothing to acknowledge; a reading lost with a failing database is stale anyway.
    this.o.writer.write(toRecord('telemetry', parsed.device, topic, Buffer.from(m.data), Date.now())).catch(() => {});
  }

  private async pull(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      this.onMessage(m);
      // Bounded memory when the database is slow: no further delivery is taken while the writer
      // holds a whole window; JetStream keeps the rest (and redelivers what outlives ack_wait).
      while (this.o.writer.stats().pending >= this.highWater && this.pending.size > 0) await Promise.race(this.pending);
    }
  }

  private onMessage(m: JsMsg): void {
    this.s.received++;
    if (m.redelivered) this.s.redelivered++;
    const record = this.record(m);
    if (record === undefined) {
      this.s.skipped++;
      m.ack();
      return;
    }
    const committed = this.o.writer.write(record);
    const acked = committed.then(
      () => {
        m.ack();
        this.s.acked++;
      },
      // Not committed (the writer was closed first): left unacknowledged, JetStream redelivers it.
      () => {},
    );
    this.pending.add(acked);
    void acked.finally(() => this.pending.delete(acked));
  }

  /** The record for a delivery, or undefined for commands and replies (not the ingest's to store). */
  private record(m: JsMsg): IngestRecord | undefined {
    const now = Date.now();
    const subject = m.subject.startsWith(MQTT_STREAM_SUBJECT_PREFIX) ? m.subject.slice(MQTT_STREAM_SUBJECT_PREFIX.length) : m.subject;
    const topic = subject.replaceAll('.', '/');
    const parsed = parseTopic(topic, this.prefix);
    if (parsed?.kind === 'cmd' || parsed?.kind === 'reply') return undefined;
    if (parsed === undefined) {
      return { kind: 'rejected', topic, reason: `subject ${m.subject} is not a device stream of this fleet`, raw: Buffer.from(m.data).toString('utf8'), receivedAt: now };
    }
    return toRecord(parsed.kind, parsed.device, topic, Buffer.from(m.data), now);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.s.reconnects++;
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') this.o.log?.(`ingest: nats ${s.type} ${String(s.data)}`);
    }
  }
}
