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
 * - Only a PUBACK with a success reason code (< 0x80) removes a message from the store. A publish
 *   the broker refuses (MQTT 5: 0x87 not authorised, 0x97 quota exceeded, 0x95 packet too large)
 *   stays queued: the link holds the queue and tries again after a growing pause (1 s doubling to
 *   5 min), counts every refusal (`refused`, telemetry `queue.refused`), emits `refused` and
 *   publishes one `fault` event per streak. A refused result is never reported delivered.
 * - Messages larger than the broker's limit are refused before they are queued (`rejected`): the
 *   limit is the smaller of `maxMessageBytes` and the Maximum Packet Size of the broker's MQTT 5
 *   CONNACK. mosquitto 2.0 answers a PUBLISH over its message_size_limit with PUBACK 0x95, a code
 *   MQTT 5 does not allow on PUBACK; mqtt.js 5 then drops the connection ("Invalid puback reason
 *   code") and re-sends the message after reconnecting, forever: nothing over the limit may ever
 *   reach mqtt.js. A queued message over a limit the broker announced later is taken out
 *   (`rejected`, with its id) rather than blocking everything behind it.
 * - The client certificate's CN must equal the device id (the deploy broker makes the CN the
 *   username and confines it to lvunet/<CN>/...): start() throws on a mismatch instead of queueing
 *   results every one of which the broker would refuse.
 * - Telemetry is QoS 0 and sent only while online: a stale reading has no value.
 * - Command replies are QoS 1 but never queued in the store, so a reply never shares a fate with
 *   results: each is checked against the broker limit (an oversized one becomes an error reply of
 *   its own), and one the broker refuses is counted (`replies.failed`) and dropped, never retried.
 *   Results use at most maxInflight (16) of the broker's receive maximum (20 in the deploy
 *   config), leaving room for replies.
 * - Retained commands are ignored (counted in `commands.ignoredRetained`, `fault` event): a
 *   retained `set-threshold` would otherwise run again on every reconnect. MQTT 5 subscriptions
 *   also ask the broker not to send retained messages (retain handling 2).
 * - The store's and the seq file's incidents (damage found on disk, failed writes, an unreadable
 *   seq file) are emitted as `incident` and published as events once online.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { CommandDispatcher, type CommandHandler } from './commands.js';
import { CommandIntake } from './link/command-intake.js';
import { applyBackoff, clientOptions, type ConnectionSettings } from './link/connection.js';
import { QueueDrain } from './link/drain.js';
import { checkCertificateIdentity } from './link/identity.js';
import { IncidentBacklog, type LinkIncident } from './link/incidents.js';
import { eventMessage, statusMessage, telemetryMessage, type PipelineStats, type Stamp } from './link/messages.js';
import { ReplySender } from './link/replies.js';
import { DiskStore, type DiskStoreOptions } from './queue/disk.js';
import { MemoryStore } from './queue/memory.js';
import type { MessageStore, StoreIncident, StoreStats } from './queue/store.js';
import {
  type CommandName,
  type CommandReply,
  type EventMessage,
  type EventType,
  type ResultBody,
  type ResultMessage,
  type Severity,
  type StatusMessage,
  type TelemetryMessage,
} from './schemas.js';
import { SeqCounter, type SeqIncident } from './seq.js';
import { CpuMeter, readTemperatureC } from './system.js';
import { DeviceTopics } from './topics.js';

export { certificateCommonName } from './link/identity.js';
export type { PipelineStats } from './link/messages.js';

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

export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** The pause before asking again for a refused command subscription; default: an unref'd setTimeout. */
  setTimeout?(fn: () => void, ms: number): unknown;
  clearTimeout?(handle: unknown): void;
}

export interface FleetLinkOptions {
  /** mqtt://host:port or mqtts://host:port. */
  url: string;
  /**
   * Other nodes of a clustered broker (deploy/nats/), same scheme as `url`: each reconnect goes to
   * the next of [url, ...failoverUrls], so a device whose node is lost continues on another.
   */
  failoverUrls?: readonly string[];
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
   * Topic + payload bytes above which a result, event or reply is refused instead of sent; default
   * 1 MiB, the message_size_limit of deploy/mosquitto/mosquitto.conf. A smaller Maximum Packet
   * Size in the broker's CONNACK takes precedence.
   */
  maxMessageBytes?: number;
  /** Longest pause between attempts after the broker refused a queued message; default 300,000. */
  refusedRetryMaxMs?: number;
  /**
   * How long to wait for the SUBACK of the command subscription before subscribing again; default
   * 10,000. A broker that never answers (a NATS node busy electing a stream leader) would otherwise
   * leave the device connected, publishing, and deaf to commands without a word.
   */
  subackTimeoutMs?: number;
}

/** MQTT PUBLISH bytes besides topic and payload: fixed header (<= 5), topic length (2), packet id (2), properties (<= 4). */
const PUBLISH_OVERHEAD = 16;

export interface LinkStats {
  state: LinkState;
  connects: number;
  /** Queued messages the broker acknowledged with a success reason code. */
  acked: number;
  /** Messages that will never be sent: over the broker's size limit (refused before queueing, or taken out of the queue). */
  rejected: number;
  /** PUBACKs with a failure reason code; each message stays queued and is tried again. */
  refused: number;
  /** Results not published because no seq number could be reserved (see the seq file incidents). */
  unpublished: number;
  inflight: number;
  telemetrySent: number;
  commands: { ok: number; failed: number; ignoredRetained: number };
  /** Command replies: sent (acknowledged), failed (refused or lost; never retried), oversized (replaced by an error reply). */
  replies: { sent: number; failed: number; oversized: number };
  /** Topic + payload bytes a message may have: maxMessageBytes, or the broker's smaller limit. */
  messageLimit: number;
  queue: StoreStats;
  /** Next result seq. */
  seq: number;
  /** Failed connection attempts since the last success, and the delay before the next one. */
  reconnect: { attempts: number; nextDelayMs: number };
}

export interface FleetLinkEvents {
  state: [LinkState];
  /**
   * A message that will never be delivered because it is over the broker's size limit: refused
   * before queueing (id undefined), or taken out of the queue (id set).
   */
  rejected: [{ topic: string; id: number | undefined; bytes: number }, Error];
  /** The broker refused a queued message (PUBACK reason code >= 0x80); it stays queued and is retried after retryMs. */
  refused: [{ topic: string; id: number; bytes: number; reasonCode: number; retryMs: number }, Error];
  /** Damage or a failed write in the queue or seq file, with what it cost. */
  incident: [StoreIncident | (SeqIncident & { lost?: number })];
  /** A command was answered (ok or not). */
  command: [string, CommandReply];
  /**
   * Connection-level errors (TLS, refused CONNECT) and telemetry source failures; the link keeps
   * retrying. Not named 'error', so an unattended device without a listener does not crash on one.
   */
  fault: [Error];
}

const NOOP = (): void => {};
/** Pause before asking again for a command subscription the broker refused. */
const COMMAND_RESUBSCRIBE_MS = 5_000;
const SUBACK_TIMEOUT_MS = 10_000;

export class FleetLink extends EventEmitter<FleetLinkEvents> {
  readonly topics: DeviceTopics;
  private readonly options: FleetLinkOptions;
  private readonly store: MessageStore;
  private readonly ownsStore: boolean;
  /** Set when the disk queue could not be opened; reported with the first incidents. */
  private startupIncident: StoreIncident | undefined;
  private readonly seq: SeqCounter;
  private readonly dispatcher: CommandDispatcher;
  private readonly maxInflight: number;
  private readonly maxMessageBytes: number;
  private readonly now: () => number;
  private readonly timers: Required<Timers>;
  private readonly cpu = new CpuMeter();
  /** Event-loop delay between telemetry messages (a stalled supervisor delays results and commands). */
  private loopDelay: IntervalHistogram | undefined;
  private readonly startedAt: number;
  private readonly stamp: Stamp;
  private readonly drainLoop: QueueDrain;
  private readonly replies: ReplySender;
  private readonly intake: CommandIntake;
  private client: MqttClient | undefined;
  private stateValue: LinkState = 'idle';
  private connects = 0;
  /** Messages refused before they were queued (over the limit); the drain counts those taken out of the queue. */
  private rejectedBeforeQueue = 0;
  private unpublished = 0;
  /** The broker's Maximum Packet Size from its last CONNACK, if it sent one. */
  private brokerMaxPacket: number | undefined;
  /** Incidents waiting to be published as events once online. */
  private readonly incidents: IncidentBacklog;
  private telemetrySent = 0;
  private reportedDropped = 0;
  private reconnectAttempts = 0;
  private telemetryTimer: unknown;
  /** Set while a refused command subscription waits to be asked for again. */
  private commandRetryTimer: unknown;
  /** Set while the SUBACK of the command subscription is awaited. */
  private subackTimer: unknown;
  /** Which subscribe is current: a SUBACK that arrives after its attempt timed out is ignored. */
  private subscribeAttempt = 0;
  private stateWaiters: Array<{ state: LinkState; resolve: () => void }> = [];

  constructor(options: FleetLinkOptions) {
    super();
    this.options = options;
    this.topics = new DeviceTopics(options.device, options.prefix);
    this.maxInflight = options.maxInflight ?? 16;
    if (!Number.isSafeInteger(this.maxInflight) || this.maxInflight < 1) throw new RangeError('maxInflight must be a positive integer');
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.stamp = { device: this.topics.device, now: this.now };
    this.incidents = new IncidentBacklog(this.stamp);
    const timers = options.timers;
    this.timers = {
      setInterval: timers ? (fn, ms) => timers.setInterval(fn, ms) : (fn, ms) => setInterval(fn, ms),
      clearInterval: timers ? (h) => timers.clearInterval(h) : (h) => clearInterval(h as NodeJS.Timeout),
      setTimeout: timers?.setTimeout
        ? (fn, ms) => timers.setTimeout!(fn, ms)
        : (fn, ms) => {
            const h = setTimeout(fn, ms);
            // A pending retry must not keep a process alive that is otherwise done.
            h.unref();
            return h;
          },
      clearTimeout: timers?.clearTimeout ? (h) => timers.clearTimeout!(h) : (h) => clearTimeout(h as NodeJS.Timeout),
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
      this.ownsStore = true;
      try {
        this.store = new DiskStore(queue);
      } catch (err) {
        // A queue directory that cannot be used (read-only, wrong owner) must not stop inference:
        // results go to memory, bounded the same way, and the operator is told why they are not durable.
        this.store = new MemoryStore(queue);
        this.startupIncident = {
          kind: 'write-failed',
          lost: 0,
          code: (err as NodeJS.ErrnoException).code ?? 'EIO',
          file: queue.dir,
          message: `offline queue ${queue.dir} cannot be opened (${(err as Error).message}): results are queued in memory only and lost if the process restarts`,
        };
      }
    }
    const seqFile = options.seqFile ?? (queue !== undefined && !isStore(queue) ? path.join(queue.dir, 'result-seq.json') : undefined);
    // The seq file lives beside the queue: an unusable queue directory cannot hold it either, and a
    // counter restarting at 0 would make consumers drop new results as duplicates of old ones.
    this.seq =
      this.startupIncident && options.seqFile === undefined
        ? SeqCounter.withoutFile(`the queue directory ${this.startupIncident.file} cannot be used`, this.now)
        : new SeqCounter(seqFile);
    this.reportedDropped = 0;
    this.dispatcher = new CommandDispatcher({ maxPayloadBytes: options.maxCommandBytes });
    this.dispatcher.on('status', () => ({ versions: options.versions ?? {}, ...this.stats() }));
    const sendEvent = (event: EventMessage): void => {
      this.client?.publish(this.topics.event, JSON.stringify(event), { qos: 1 }, NOOP);
    };
    this.drainLoop = new QueueDrain({
      store: this.store,
      maxInflight: this.maxInflight,
      refusedRetryMaxMs: options.refusedRetryMaxMs ?? 300_000,
      limit: () => this.messageLimit(),
      client: () => (this.client?.connected && this.stateValue === 'online' ? this.client : undefined),
      stamp: this.stamp,
      sendEvent,
      onRejected: (m, err) => this.emit('rejected', m, err),
      onRefused: (m, err) => this.emit('refused', m, err),
      afterPeek: () => this.collectIncidents(),
    });
    this.replies = new ReplySender({
      topic: (name) => this.topics.reply(name),
      limit: () => this.messageLimit(),
      client: () => this.client,
      onAnswered: (name, reply) => this.emit('command', name, reply),
      onFault: (err) => this.emit('fault', err),
    });
    this.intake = new CommandIntake({
      topics: this.topics,
      dispatcher: this.dispatcher,
      stamp: this.stamp,
      reply: (name, reply) => this.replies.send(name, reply),
      sendEvent,
      onFault: (err) => this.emit('fault', err),
    });
  }

  get state(): LinkState {
    return this.stateValue;
  }

  /** Connects in the background; the link retries until close(). Results can be queued before. */
  start(): void {
    if (this.client || this.stateValue === 'closed') return;
    const o = this.options;
    if (o.tls?.cert) checkCertificateIdentity(o.tls.cert, this.topics.device);
    const minMs = o.reconnectMinMs ?? 1000;
    const maxMs = o.reconnectMaxMs ?? 30_000;
    const settings: ConnectionSettings = {
      clientId: o.clientId ?? o.device,
      url: o.url,
      failover: o.failoverUrls,
      protocolVersion: o.protocolVersion ?? 5,
      keepaliveS: o.keepaliveS ?? 30,
      reconnectMinMs: minMs,
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      username: o.username,
      password: o.password,
      tls: o.tls,
      will: { topic: this.topics.status, payload: JSON.stringify(this.statusMessage('offline')) },
    };
    const options = clientOptions(settings);
    this.setState('connecting');
    const client = mqtt.connect(o.url, options);
    this.client = client;
    applyBackoff(client, minMs, maxMs, () => this.reconnectAttempts, () => {
      this.reconnectAttempts++;
      if (this.stateValue !== 'closed') this.setState('offline');
    });
    client.on('connect', (connack) => {
      const max = connack.properties?.maximumPacketSize;
      this.brokerMaxPacket = typeof max === 'number' && max > 0 ? max : undefined;
      // clean: true, so every connection starts without subscriptions; mqtt.js's own re-subscribe
      // is off (connection.ts), as it forgets a filter whose SUBACK is refused.
      this.subscribeCommands(client);
      this.onConnect();
    });
    client.on('message', (topic, payload, packet) => this.intake.onMessage(topic, payload, packet.retain));
    client.on('error', (err) => this.emit('fault', err));
    if (o.telemetry) {
      this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
      this.loopDelay.enable();
      this.telemetryTimer = this.timers.setInterval(() => this.sendTelemetry(), o.telemetry.intervalMs);
    }
  }

  /**
   * Subscribes to this device's commands (on every connect: the session is clean), and again
   * after a refusal: one refused SUBACK (nats-server refuses while it elects a stream leader after
   * losing a node) must not cut the device off from commands until the process restarts.
   */
  private subscribeCommands(client: MqttClient): void {
    this.cancelCommandRetry();
    const attempt = ++this.subscribeAttempt;
    const timeoutMs = this.options.subackTimeoutMs ?? SUBACK_TIMEOUT_MS;
    this.subackTimer = this.timers.setTimeout(() => {
      this.subackTimer = undefined;
      if (attempt !== this.subscribeAttempt || this.client !== client || this.stateValue === 'closed') return;
      // Disconnected meanwhile: the next connect subscribes (a new attempt).
      if (!client.connected) return;
      this.emit('fault', new Error(`no SUBACK for the command subscription ${this.topics.commandFilter} within ${timeoutMs / 1000} s; subscribing again`));
      this.subscribeCommands(client);
    }, timeoutMs);
    // rh 2: no retained messages at subscribe (MQTT 5); onMessage also drops any that arrive.
    client.subscribe(this.topics.commandFilter, { qos: 1, rh: 2 }, (err) => {
      if (attempt !== this.subscribeAttempt) return;
      this.cancelSubackTimer();
      if (!err || this.client !== client || this.stateValue === 'closed') return;
      // mqtt.js's ErrorWithSubackPacket carries the SUBACK; any other error is the connection going
      // away, and the next connect subscribes again.
      const suback = (err as Error & { packet?: { cmd?: string; granted?: unknown[] } }).packet;
      if (suback?.cmd !== 'suback') return;
      const code = suback.granted?.find((g): g is number => typeof g === 'number' && g >= 0x80) ?? 0x80;
      this.emit('fault', new Error(`broker refused the command subscription ${this.topics.commandFilter} (SUBACK 0x${code.toString(16)}); retrying in ${COMMAND_RESUBSCRIBE_MS / 1000} s`));
      this.cancelCommandRetry();
      this.commandRetryTimer = this.timers.setTimeout(() => {
        this.commandRetryTimer = undefined;
        // Disconnected meanwhile: the next connect subscribes.
        if (this.client === client && client.connected && this.stateValue !== 'closed') this.subscribeCommands(client);
      }, COMMAND_RESUBSCRIBE_MS);
    });
  }

  private cancelSubackTimer(): void {
    if (this.subackTimer === undefined) return;
    this.timers.clearTimeout(this.subackTimer);
    this.subackTimer = undefined;
  }

  private cancelCommandRetry(): void {
    this.cancelSubackTimer();
    if (this.commandRetryTimer === undefined) return;
    this.timers.clearTimeout(this.commandRetryTimer);
    this.commandRetryTimer = undefined;
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
    if (seq === undefined) {
      this.unpublished++;
      this.collectIncidents();
      return undefined;
    }
    const message: ResultMessage = { ...body, device: this.topics.device, seq };
    const id = this.enqueue(this.topics.result, JSON.stringify(message));
    return id === undefined ? undefined : seq;
  }

  /** Queues an event (QoS 1, through the store like results). */
  publishEvent(type: EventType, severity: Severity, message: string, details?: Record<string, unknown>): boolean {
    const event = eventMessage(this.stamp, type, severity, message, details);
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
      acked: this.drainLoop.acked,
      rejected: this.rejectedBeforeQueue + this.drainLoop.rejected,
      refused: this.drainLoop.refused,
      unpublished: this.unpublished,
      inflight: this.drainLoop.inflightCount,
      telemetrySent: this.telemetrySent,
      commands: { ok: this.replies.ok, failed: this.replies.failed, ignoredRetained: this.intake.ignoredRetained },
      replies: { ...this.replies.counts },
      messageLimit: this.messageLimit(),
      queue: this.store.stats(),
      seq: this.seq.peek(),
      reconnect: { attempts: this.reconnectAttempts, nextDelayMs: this.client?.options.reconnectPeriod ?? 0 },
    };
  }

  /** Resolves once the queue is empty and nothing is in flight, or after timeoutMs (false). */
  drain(timeoutMs = 30_000): Promise<boolean> {
    return this.drainLoop.drain(timeoutMs);
  }

  /**
   * Announces `offline` (retained) when connected, waits up to drainMs for in-flight messages,
   * then disconnects. Whatever is still queued stays in a disk store for the next start.
   */
  async close(drainMs = 2_000): Promise<void> {
    if (this.stateValue === 'closed') return;
    const client = this.client;
    if (this.telemetryTimer !== undefined) this.timers.clearInterval(this.telemetryTimer);
    this.cancelCommandRetry();
    this.loopDelay?.disable();
    this.drainLoop.stopHold();
    const graceful = client?.connected === true;
    if (client && graceful) {
      await this.drain(drainMs);
      client.publish(this.topics.status, JSON.stringify(this.statusMessage('offline')), { qos: 1, retain: true }, NOOP);
    }
    this.setState('closed');
    if (client) {
      // A clean DISCONNECT (after the offline status is acknowledged) keeps the broker from also
      // publishing the will; without a connection there is nobody to say goodbye to. mqtt.js's
      // end(false) waits for every packet in flight (a SUBSCRIBE the broker never answered
      // included) and a later end(true) does not cut that wait short, so wait here, bounded, and
      // only then end: gracefully if everything was acknowledged, forcibly if not.
      const outgoingEmpty = (): boolean => Object.keys(client.outgoing).length === 0;
      if (graceful && !outgoingEmpty()) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            client.off('outgoingEmpty', done);
            resolve();
          };
          const timer = setTimeout(done, Math.max(drainMs, 100));
          client.on('outgoingEmpty', done);
        });
      }
      await client.endAsync(!graceful || !outgoingEmpty());
    }
    this.drainLoop.forgetInflight();
    if (this.ownsStore) this.store.close();
    else this.store.flush();
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Topic + payload bytes one message may have now: maxMessageBytes, or less when the broker's
   * CONNACK announced a smaller Maximum Packet Size.
   */
  messageLimit(): number {
    return this.brokerMaxPacket === undefined ? this.maxMessageBytes : Math.min(this.maxMessageBytes, this.brokerMaxPacket - PUBLISH_OVERHEAD);
  }

  /** Payload bytes a reply to `command` may have (for handlers that can size their answer, like snapshot). */
  replyBudget(command: string): number {
    return this.messageLimit() - Buffer.byteLength(this.topics.reply(command));
  }

  private enqueue(topic: string, payload: string): number | undefined {
    if (this.stateValue === 'closed') throw new Error('fleet link is closed');
    const bytes = Buffer.byteLength(topic) + Buffer.byteLength(payload);
    const limit = this.messageLimit();
    if (bytes > limit) {
      this.rejectedBeforeQueue++;
      this.emit('rejected', { topic, id: undefined, bytes }, new RangeError(`message of ${bytes} bytes exceeds the broker limit of ${limit} bytes`));
      return undefined;
    }
    const id = this.store.append({ topic, payload, qos: 1 });
    this.collectIncidents();
    this.drainLoop.pump();
    return id;
  }

  /** Takes the store's and seq file's incidents: emitted now, published as events once online. */
  private collectIncidents(): void {
    const found: LinkIncident[] = [...this.store.takeIncidents(), ...this.seq.takeIncidents()];
    if (this.startupIncident) {
      found.unshift(this.startupIncident);
      this.startupIncident = undefined;
    }
    for (const incident of found) this.emit('incident', incident);
    this.incidents.add(found);
    this.publishIncidents();
  }

  private publishIncidents(): void {
    const client = this.client;
    if (!client?.connected || this.stateValue !== 'online') return;
    // Sent directly, not through the store: the store may be what is failing.
    this.incidents.flush((event) => client.publish(this.topics.event, JSON.stringify(event), { qos: 1 }, NOOP));
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
      const event = eventMessage(this.stamp, 'drop', 'warning', `offline queue dropped ${lost} message(s) while the broker was unreachable`, {
        dropped_since_last_report: lost,
        dropped_total: dropped,
      });
      this.client?.publish(this.topics.event, JSON.stringify(event), { qos: 1 }, NOOP);
    }
    this.collectIncidents();
    this.drainLoop.pump();
  }

  private sendTelemetry(): void {
    const client = this.client;
    const source = this.options.telemetry?.source;
    if (!client?.connected || !source) return;
    let message: TelemetryMessage;
    try {
      const p = source();
      const queue = this.store.stats();
      const sys = {
        cpuPct: this.cpu.sample(),
        rssBytes: process.memoryUsage.rss(),
        temperatureC: readTemperatureC(this.options.thermalRoot),
        uptimeS: Math.round((this.now() - this.startedAt) / 1000),
        eventLoopLagMs: this.loopDelay && this.loopDelay.count > 0 ? this.loopDelay.percentile(99) / 1e6 : undefined,
      };
      this.loopDelay?.reset();
      message = telemetryMessage(this.stamp, p, sys, queue, this.drainLoop.refused);
    } catch (err) {
      this.emit('fault', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    client.publish(this.topics.telemetry, JSON.stringify(message), { qos: 0 }, NOOP);
    this.telemetrySent++;
  }

  private statusMessage(state: 'online' | 'offline'): StatusMessage {
    return statusMessage(this.stamp, state, this.options.versions ?? {});
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
