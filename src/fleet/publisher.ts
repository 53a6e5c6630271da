/**
 * FleetLink: one device's connection to the fleet broker.
 *
 * Delivery guarantees
 * - Results and events go through the message store (a DiskStore in production) and leave it only
 *   when the broker has acknowledged them (PUBACK), in append order, at most `maxInflight` at a
 *   time. A broker outage, a dropped network or a process restart loses nothing that was queued.
 * - Delivery is at-least-once: a message acknowledged by the broker but not yet committed to disk
 *   when the process dies is sent again on the next start. Results carry a per-device `seq` that is
 *   persisted across restarts, so consumers deduplicate on (device, seq).
 * - The store is bounded; what its drop policy discards is counted (`queue.dropped` in telemetry) and
 *   announced with a `drop` event once the link is back online.
 * - A message the broker refuses with a PUBACK reason code (MQTT 5: 0x87 not authorised, 0x97
 *   quota exceeded) would be refused forever, so it is removed from the store and counted as
 *   `rejected` instead of blocking the queue.
 * - Messages larger than `maxMessageBytes` are refused before they are queued. mosquitto 2.0
 *   answers a PUBLISH over its message_size_limit with PUBACK 0x95, a code MQTT 5 does not allow
 *   on PUBACK; mqtt.js 5 then drops the connection ("Invalid puback reason code") and re-sends the
 *   message after reconnecting, forever. Keep maxMessageBytes <= the broker's message_size_limit.
 * - Telemetry is QoS 0 and sent only while online: a stale reading has no value.
 * - Command replies are QoS 1 but not queued on disk: a reply after a restart answers nobody.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { CommandDispatcher, type CommandHandler } from './commands.js';
import { DiskStore, type DiskStoreOptions } from './queue/disk.js';
import { MemoryStore } from './queue/memory.js';
import type { MessageStore, QueuedMessage, StoreStats } from './queue/store.js';
import {
  EVENT_SCHEMA,
  REPLY_SCHEMA,
  STATUS_SCHEMA,
  TELEMETRY_SCHEMA,
  type CommandName,
  type CommandReply,
  type EventMessage,
  type EventType,
  type ModelRef,
  type Percentiles,
  type ResultBody,
  type ResultMessage,
  type Severity,
  type StatusMessage,
  type TelemetryMessage,
} from './schemas.js';
import { SeqCounter } from './seq.js';
import { CpuMeter, readTemperatureC } from './system.js';
import { DeviceTopics, parseTopic } from './topics.js';

export type LinkState = 'idle' | 'connecting' | 'online' | 'offline' | 'closed';

export interface TlsFiles {
  /** CA bundle that signed the broker certificate. */
  ca?: string;
  /** Client certificate and key for mutual TLS. */
  cert?: string;
  key?: string;
  /** Default true; only for lab brokers with throwaway certificates. */
  rejectUnauthorized?: boolean;
  /** Name to check the broker certificate against when it differs from the URL host. */
  servername?: string;
}

/** What the pipeline reports for telemetry; the link adds system figures. */
export interface PipelineStats {
  fps: number;
  latency_ms: Percentiles;
  drops: number;
  provider: string;
  model: ModelRef | null;
}

export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface FleetLinkOptions {
  /** mqtt://host:port or mqtts://host:port. */
  url: string;
  device: string;
  /** Default `lvunet`. */
  prefix?: string;
  /** Default: the device id (the mTLS broker replaces it with the certificate CN anyway). */
  clientId?: string;
  username?: string;
  password?: string;
  tls?: TlsFiles;
  /**
   * The offline queue: a store instance (the caller closes it), or DiskStore options (the link
   * opens and closes it). Default: an in-memory store, which loses the queue on restart.
   */
  queue?: MessageStore | DiskStoreOptions;
  /**
   * File that keeps the result seq across restarts. Default `<queue dir>/result-seq.json` with a
   * disk queue; without one, seq restarts at 0 with the process.
   */
  seqFile?: string;
  /** Reported in the birth message and the status command, e.g. { runtime: '0.1.0' }. */
  versions?: Record<string, string>;
  /** QoS 1 messages awaiting PUBACK at once; default 16. */
  maxInflight?: number;
  /** Default 30 s. */
  keepaliveS?: number;
  /** First reconnect delay; doubles per failed attempt up to reconnectMaxMs. Default 1000. */
  reconnectMinMs?: number;
  /** Default 30,000. */
  reconnectMaxMs?: number;
  /** Default 10,000. */
  connectTimeoutMs?: number;
  /** Telemetry every intervalMs while online. */
  telemetry?: { intervalMs: number; source: () => PipelineStats };
  /** Injectable for tests. */
  now?: () => number;
  timers?: Timers;
  /** Default '/sys/class/thermal'. */
  thermalRoot?: string;
  /** Larger command payloads get an error reply without being parsed; default 64 KiB. */
  maxCommandBytes?: number;
  /** Default 5 (MQTT 5 reports refusals as PUBACK reason codes; 3.1.1 brokers just drop the connection). */
  protocolVersion?: 4 | 5;
  /**
   * Topic + payload bytes above which a result or event is refused instead of queued; default
   * 1 MiB, the message_size_limit of deploy/mosquitto/mosquitto.conf.
   */
  maxMessageBytes?: number;
}

export interface LinkStats {
  state: LinkState;
  connects: number;
  /** Queued messages the broker acknowledged. */
  acked: number;
  /** Queued messages the broker refused with a reason code (removed, never retried). */
  rejected: number;
  inflight: number;
  telemetrySent: number;
  commands: { ok: number; failed: number };
  queue: StoreStats;
  /** Next result seq. */
  seq: number;
  /** Failed connection attempts since the last success, and the delay before the next one. */
  reconnect: { attempts: number; nextDelayMs: number };
}

export interface FleetLinkEvents {
  state: [LinkState];
  /**
   * A message that will never be delivered: refused by the broker with a reason code (it has
   * been removed from the queue; id set) or too large to queue (id undefined).
   */
  rejected: [{ topic: string; id: number | undefined; bytes: number }, Error];
  /** A command was answered (ok or not). */
  command: [string, CommandReply];
  /**
   * Connection-level errors (TLS, refused CONNECT) and telemetry source failures; the link keeps
   * retrying. Not named 'error', so an unattended device without a listener does not crash on one.
   */
  fault: [Error];
}

const NOOP = (): void => {};

export class FleetLink extends EventEmitter<FleetLinkEvents> {
  readonly topics: DeviceTopics;
  private readonly options: FleetLinkOptions;
  private readonly store: MessageStore;
  private readonly ownsStore: boolean;
  private readonly seq: SeqCounter;
  private readonly dispatcher: CommandDispatcher;
  private readonly maxInflight: number;
  private readonly maxMessageBytes: number;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly cpu = new CpuMeter();
  private readonly startedAt: number;
  private client: MqttClient | undefined;
  private stateValue: LinkState = 'idle';
  private readonly inflight = new Set<number>();
  /** Highest queued id handed to mqtt.js; the pump continues after it. */
  private cursor = 0;
  private connects = 0;
  private acked = 0;
  private rejectedCount = 0;
  private telemetrySent = 0;
  private commandsOk = 0;
  private commandsFailed = 0;
  private reportedDropped = 0;
  private reconnectAttempts = 0;
  private telemetryTimer: unknown;
  private drainWaiters: Array<() => void> = [];
  private stateWaiters: Array<{ state: LinkState; resolve: () => void }> = [];

  constructor(options: FleetLinkOptions) {
    super();
    this.options = options;
    this.topics = new DeviceTopics(options.device, options.prefix);
    this.maxInflight = options.maxInflight ?? 16;
    if (!Number.isSafeInteger(this.maxInflight) || this.maxInflight < 1) throw new RangeError('maxInflight must be a positive integer');
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? {
      setInterval: (fn, ms) => setInterval(fn, ms),
      clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
    };
    this.startedAt = this.now();
    const queue = options.queue;
    if (queue === undefined) {
      this.store = new MemoryStore();
      this.ownsStore = true;
    } else if (isStore(queue)) {
      this.store = queue;
      this.ownsStore = false;
    } else {
      this.store = new DiskStore(queue);
      this.ownsStore = true;
    }
    const seqFile = options.seqFile ?? (queue !== undefined && !isStore(queue) ? path.join(queue.dir, 'result-seq.json') : undefined);
    this.seq = new SeqCounter(seqFile);
    this.reportedDropped = 0;
    this.dispatcher = new CommandDispatcher({ maxPayloadBytes: options.maxCommandBytes });
    this.dispatcher.on('status', () => ({ versions: options.versions ?? {}, ...this.stats() }));
  }

  get state(): LinkState {
    return this.stateValue;
  }

  /** Connects in the background; the link retries until close(). Results can be queued before. */
  start(): void {
    if (this.client || this.stateValue === 'closed') return;
    const o = this.options;
    const minMs = o.reconnectMinMs ?? 1000;
    const maxMs = o.reconnectMaxMs ?? 30_000;
    const clientOptions: IClientOptions = {
      clientId: o.clientId ?? o.device,
      protocolVersion: o.protocolVersion ?? 5,
      // Durability lives in our store; a persistent broker session would also deliver commands
      // queued while the device was off, which may be hours stale (a reload-model to an old file).
      clean: true,
      keepalive: o.keepaliveS ?? 30,
      reconnectPeriod: minMs,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      resubscribe: true,
      will: {
        topic: this.topics.status,
        payload: Buffer.from(JSON.stringify(this.statusMessage('offline'))),
        qos: 1,
        retain: true,
      },
    };
    if (o.username !== undefined) clientOptions.username = o.username;
    if (o.password !== undefined) clientOptions.password = o.password;
    if (o.tls) {
      if (o.tls.ca) clientOptions.ca = readFileSync(o.tls.ca);
      if (o.tls.cert) clientOptions.cert = readFileSync(o.tls.cert);
      if (o.tls.key) clientOptions.key = readFileSync(o.tls.key);
      if (o.tls.servername) clientOptions.servername = o.tls.servername;
      clientOptions.rejectUnauthorized = o.tls.rejectUnauthorized ?? true;
    }
    this.setState('connecting');
    const client = mqtt.connect(o.url, clientOptions);
    this.client = client;
    // Runs before mqtt.js's own 'close' listener arms the reconnect timer, so the new period is
    // the one used for the coming attempt: exponential backoff with jitter on top of mqtt.js's
    // fixed reconnectPeriod.
    client.prependListener('close', () => {
      const base = Math.min(maxMs, minMs * 2 ** Math.min(this.reconnectAttempts, 20));
      client.options.reconnectPeriod = Math.round(base * (0.75 + Math.random() * 0.5));
      this.reconnectAttempts++;
      if (this.stateValue !== 'closed') this.setState('offline');
    });
    client.on('connect', () => this.onConnect());
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => this.emit('fault', err));
    client.subscribe(this.topics.commandFilter, { qos: 1 }, NOOP);
    if (o.telemetry) {
      this.telemetryTimer = this.timers.setInterval(() => this.sendTelemetry(), o.telemetry.intervalMs);
    }
  }

  /** Resolves when the link reaches `state` (now or later); rejects after timeoutMs. */
  waitFor(state: LinkState, timeoutMs = 30_000): Promise<void> {
    if (this.stateValue === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const entry = { state, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.stateWaiters = this.stateWaiters.filter((w) => w !== entry);
        reject(new Error(`fleet link not ${state} within ${timeoutMs} ms (now ${this.stateValue})`));
      }, timeoutMs);
      this.stateWaiters.push(entry);
    });
  }

  /**
   * Queues a result; returns its seq, or undefined when it was refused (larger than
   * maxMessageBytes, or the queue is full under drop-newest). Never blocks on the network.
   */
  publishResult(body: ResultBody): number | undefined {
    const seq = this.seq.take();
    const message: ResultMessage = { ...body, device: this.topics.device, seq };
    const id = this.enqueue(this.topics.result, JSON.stringify(message));
    return id === undefined ? undefined : seq;
  }

  /** Queues an event (QoS 1, through the store like results). */
  publishEvent(type: EventType, severity: Severity, message: string, details?: Record<string, unknown>): boolean {
    const event: EventMessage = {
      schema: EVENT_SCHEMA,
      device: this.topics.device,
      time: new Date(this.now()).toISOString(),
      type,
      severity,
      message,
    };
    if (details) event.details = details;
    return this.enqueue(this.topics.event, JSON.stringify(event)) !== undefined;
  }

  /** Registers the handler of a command; what it returns (or resolves to) goes back as `result`. */
  onCommand<K extends CommandName>(name: K, handler: CommandHandler<K>, options: { timeoutMs?: number } = {}): void {
    this.dispatcher.on(name, handler, options);
  }

  stats(): LinkStats {
    return {
      state: this.stateValue,
      connects: this.connects,
      acked: this.acked,
      rejected: this.rejectedCount,
      inflight: this.inflight.size,
      telemetrySent: this.telemetrySent,
      commands: { ok: this.commandsOk, failed: this.commandsFailed },
      queue: this.store.stats(),
      seq: this.seq.peek(),
      reconnect: { attempts: this.reconnectAttempts, nextDelayMs: this.client?.options.reconnectPeriod ?? 0 },
    };
  }

  /** Resolves once the queue is empty and nothing is in flight, or after timeoutMs (false). */
  drain(timeoutMs = 30_000): Promise<boolean> {
    if (this.isDrained()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.drainWaiters = this.drainWaiters.filter((w) => w !== waiter);
        resolve(ok);
      };
      const waiter = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.drainWaiters.push(waiter);
    });
  }

  /**
   * Announces `offline` (retained) when connected, waits up to drainMs for in-flight messages,
   * then disconnects. Whatever is still queued stays in a disk store for the next start.
   */
  async close(drainMs = 2_000): Promise<void> {
    if (this.stateValue === 'closed') return;
    const client = this.client;
    if (this.telemetryTimer !== undefined) this.timers.clearInterval(this.telemetryTimer);
    const graceful = client?.connected === true;
    if (client && graceful) {
      await this.drain(drainMs);
      client.publish(this.topics.status, JSON.stringify(this.statusMessage('offline')), { qos: 1, retain: true }, NOOP);
    }
    this.setState('closed');
    if (client) {
      // A clean DISCONNECT (after the offline status is acknowledged) keeps the broker from also
      // publishing the will; without a connection there is nobody to say goodbye to.
      const ended = client.endAsync(!graceful);
      const timer = setTimeout(() => client.end(true), Math.max(drainMs, 100));
      await ended;
      clearTimeout(timer);
    }
    this.inflight.clear();
    if (this.ownsStore) this.store.close();
    else this.store.flush();
  }

  /**
   * Drops the connection without DISCONNECT, as a crash or a pulled cable would (the broker then
   * publishes the will). The link reconnects by itself. For tests and fault drills.
   */
  dropConnection(): void {
    this.client?.stream?.destroy();
  }

  // -------------------------------------------------------------------------------------------

  private enqueue(topic: string, payload: string): number | undefined {
    if (this.stateValue === 'closed') throw new Error('fleet link is closed');
    const bytes = Buffer.byteLength(topic) + Buffer.byteLength(payload);
    if (bytes > this.maxMessageBytes) {
      this.rejectedCount++;
      this.emit('rejected', { topic, id: undefined, bytes }, new RangeError(`message of ${bytes} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`));
      return undefined;
    }
    const id = this.store.append({ topic, payload, qos: 1 });
    this.pump();
    return id;
  }

  private onConnect(): void {
    this.connects++;
    this.reconnectAttempts = 0;
    this.client?.publish(this.topics.status, JSON.stringify(this.statusMessage('online')), { qos: 1, retain: true }, NOOP);
    this.setState('online');
    const dropped = this.store.stats().dropped;
    if (dropped > this.reportedDropped) {
      const lost = dropped - this.reportedDropped;
      this.reportedDropped = dropped;
      // Sent directly: queueing the news of a full queue would push out one more message.
      const event: EventMessage = {
        schema: EVENT_SCHEMA,
        device: this.topics.device,
        time: new Date(this.now()).toISOString(),
        type: 'drop',
        severity: 'warning',
        message: `offline queue dropped ${lost} message(s) while the broker was unreachable`,
        details: { dropped_since_last_report: lost, dropped_total: dropped },
      };
      this.client?.publish(this.topics.event, JSON.stringify(event), { qos: 1 }, NOOP);
    }
    this.pump();
  }

  private pump(): void {
    const client = this.client;
    if (!client?.connected || this.stateValue !== 'online') return;
    while (this.inflight.size < this.maxInflight) {
      const batch = this.store.peek(this.cursor, this.maxInflight);
      if (batch.length === 0) break;
      for (const message of batch) {
        if (this.inflight.size >= this.maxInflight) break;
        this.cursor = message.id;
        if (this.inflight.has(message.id)) continue;
        this.send(client, message);
      }
    }
    if (this.isDrained()) for (const w of [...this.drainWaiters]) w();
  }

  private send(client: MqttClient, message: QueuedMessage): void {
    this.inflight.add(message.id);
    const opts: IClientPublishOptions = { qos: message.qos, retain: message.retain };
    client.publish(message.topic, message.payload, opts, (err) => {
      if (!this.inflight.delete(message.id)) return;
      if (!err) {
        this.store.ack(message.id);
        this.acked++;
      } else if (typeof (err as Error & { code?: unknown }).code === 'number') {
        // A PUBACK reason code >= 0x80: the broker will refuse this message every time.
        this.store.ack(message.id);
        this.rejectedCount++;
        this.emit('rejected', { topic: message.topic, id: message.id, bytes: message.payload.length }, err);
      } else {
        // The client gave up on it (forced end); send it again after everything before it.
        this.cursor = Math.min(this.cursor, message.id - 1);
      }
      this.pump();
    });
  }

  private isDrained(): boolean {
    return this.inflight.size === 0 && this.store.stats().pending === 0;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic, this.topics.prefix);
    if (!parsed || parsed.kind !== 'cmd' || parsed.device !== this.topics.device) return;
    const name = parsed.command;
    void this.dispatcher.dispatch(name, payload).then((reply) => this.reply(name, reply));
  }

  private reply(name: string, reply: CommandReply): void {
    let text: string;
    try {
      text = JSON.stringify(reply);
    } catch (err) {
      // A handler result that is not JSON (cycles, BigInt) must still produce an answer.
      reply = { schema: REPLY_SCHEMA, id: reply.id, ok: false, error: `result is not serialisable: ${(err as Error).message}` };
      text = JSON.stringify(reply);
    }
    if (reply.ok) this.commandsOk++;
    else this.commandsFailed++;
    this.emit('command', name, reply);
    this.client?.publish(this.topics.reply(name), text, { qos: 1 }, NOOP);
  }

  private sendTelemetry(): void {
    const client = this.client;
    const source = this.options.telemetry?.source;
    if (!client?.connected || !source) return;
    let message: TelemetryMessage;
    try {
      const p = source();
      const queue = this.store.stats();
      message = {
        schema: TELEMETRY_SCHEMA,
        device: this.topics.device,
        time: new Date(this.now()).toISOString(),
        fps: p.fps,
        latency_ms: p.latency_ms,
        drops: p.drops,
        provider: p.provider,
        cpu_pct: Math.round(this.cpu.sample() * 10) / 10,
        memory_rss_bytes: process.memoryUsage.rss(),
        temperature_c: readTemperatureC(this.options.thermalRoot),
        uptime_s: Math.round((this.now() - this.startedAt) / 1000),
        model: p.model,
        queue: { pending: queue.pending, dropped: queue.dropped },
      };
    } catch (err) {
      this.emit('fault', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    client.publish(this.topics.telemetry, JSON.stringify(message), { qos: 0 }, NOOP);
    this.telemetrySent++;
  }

  private statusMessage(state: 'online' | 'offline'): StatusMessage {
    return {
      schema: STATUS_SCHEMA,
      device: this.topics.device,
      state,
      time: new Date(this.now()).toISOString(),
      versions: this.options.versions ?? {},
    };
  }

  private setState(state: LinkState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit('state', state);
    const ready = this.stateWaiters.filter((w) => w.state === state);
    this.stateWaiters = this.stateWaiters.filter((w) => w.state !== state);
    for (const w of ready) w.resolve();
  }
}

function isStore(queue: MessageStore | DiskStoreOptions): queue is MessageStore {
  return typeof (queue as MessageStore).append === 'function';
}
