/**
 * Topic layout of the fleet broker (deploy/mosquitto/acl):
 * `<prefix>/<device-id>/{status,result,telemetry,event,cmd/<name>,cmd/<name>/reply}`.
 */

export const DEFAULT_PREFIX = 'lvunet';

export type StreamKind = 'status' | 'result' | 'telemetry' | 'event';
export const STREAM_KINDS: readonly StreamKind[] = ['status', 'result', 'telemetry', 'event'];

export type ParsedTopic =
  | { prefix: string; device: string; kind: StreamKind }
  | { prefix: string; device: string; kind: 'cmd'; command: string }
  | { prefix: string; device: string; kind: 'reply'; command: string };

// The ACL expands %u (the certificate CN) inside topic filters, and the deploy README limits CNs to
// this set; anything else (`+`, `#`, `/`, spaces, NUL) would change which topics a device may touch.
const DEVICE_ID = /^[A-Za-z0-9._-]{1,128}$/;
// Command names become a topic level of their own, so the same hazards apply.
const COMMAND_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

export function assertDeviceId(id: string): void {
  if (!isValidDeviceId(id)) {
    throw new TypeError(`invalid device id ${JSON.stringify(id)}: use 1-128 of [A-Za-z0-9._-] (no '+', '#' or '/')`);
  }
}

export function isValidCommandName(name: string): boolean {
  return COMMAND_NAME.test(name);
}

function assertPrefix(prefix: string): void {
  // A prefix may span several levels (`site-a/lvunet`) but must not contain wildcards or empty levels.
  if (prefix === '' || /[+#\0]/.test(prefix) || prefix.split('/').some((level) => level === '')) {
    throw new TypeError(`invalid topic prefix ${JSON.stringify(prefix)}`);
  }
}

/** Builds every topic of one device; the device id and prefix are checked once, here. */
export class DeviceTopics {
  readonly prefix: string;
  readonly device: string;
  readonly base: string;

  constructor(device: string, prefix: string = DEFAULT_PREFIX) {
    assertPrefix(prefix);
    assertDeviceId(device);
    this.prefix = prefix;
    this.device = device;
    this.base = `${prefix}/${device}`;
  }

  get status(): string {
    return `${this.base}/status`;
  }
  get result(): string {
    return `${this.base}/result`;
  }
  get telemetry(): string {
    return `${this.base}/telemetry`;
  }
  get event(): string {
    return `${this.base}/event`;
  }
  /** Subscription filter for every command to this device. */
  get commandFilter(): string {
    return `${this.base}/cmd/+`;
  }
  command(name: string): string {
    return `${this.base}/cmd/${checkedCommand(name)}`;
  }
  /**
   * The reply topic of a command. Accepts any name that arrived as a single topic level (so it can
   * be answered even when it is not a known or well-formed command name), but never a wildcard.
   */
  reply(name: string): string {
    if (name.includes('/') || /[+#\0]/.test(name)) throw new TypeError(`invalid command name ${JSON.stringify(name)}`);
    return `${this.base}/cmd/${name}/reply`;
  }
}

function checkedCommand(name: string): string {
  if (!isValidCommandName(name)) throw new TypeError(`invalid command name ${JSON.stringify(name)}`);
  return name;
}

/** Fleet-wide subscription filters, for operators and the bench subscriber. */
export function fleetFilter(kind: StreamKind | 'cmd/+' | 'cmd/+/reply' | '#', prefix: string = DEFAULT_PREFIX): string {
  assertPrefix(prefix);
  return kind === '#' ? `${prefix}/#` : `${prefix}/+/${kind}`;
}

/** Parses a concrete topic of the layout; undefined for anything else (including bad device ids). */
export function parseTopic(topic: string, prefix: string = DEFAULT_PREFIX): ParsedTopic | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const rest = topic.slice(prefix.length + 1).split('/');
  const [device, kind, command, tail] = rest;
  if (device === undefined || !isValidDeviceId(device) || kind === undefined) return undefined;
  if (rest.length === 2 && (STREAM_KINDS as readonly string[]).includes(kind)) {
    return { prefix, device, kind: kind as StreamKind };
  }
  if (kind !== 'cmd' || command === undefined || command === '' || /[+#]/.test(command)) return undefined;
  if (rest.length === 3) return { prefix, device, kind: 'cmd', command };
  if (rest.length === 4 && tail === 'reply') return { prefix, device, kind: 'reply', command };
  return undefined;
}
