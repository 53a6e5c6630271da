/**
 * The one place that knows what a secret looks like in text, so that no log line, published event
 * or command reply carries one: the password of any URL with credentials (scheme://user:pass@host,
 * the form `--mqtt` takes) and every value registered as a secret (config mqtt.password, from the
 * file, LVUNET_MQTT_PASSWORD or the CLI). The process's loggers (src/cli/main.ts, the worker), the
 * events the supervisor publishes and every command reply (src/fleet/commands.ts) pass through it.
 */

export const REDACTED = '***';

// scheme://user:password@ : the user name stays (it says which account), the password goes.
// The password may hold ':' (only the first one separates); '@', '/', '?', '#' and spaces end it.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):([^\s/?#@]*)@/gi;
// Values under these keys are secrets whatever they look like (redactValue).
const SECRET_KEY = /^(password|passwd|secret|token|private_?key)$/i;
// Shorter registered secrets are replaced only as whole tokens: replacing every "ab" in a log
// would make it unreadable, and a password that short is a problem of its own.
const MIN_SUBSTRING_SECRET = 4;

const secrets = new Set<string>();

/** Adds a value to redact wherever it appears (as is and URL-encoded). Empty values are ignored. */
export function registerSecret(value: string | null | undefined): void {
  if (value === null || value === undefined || value === '') return;
  secrets.add(value);
  const encoded = encodeURIComponent(value);
  if (encoded !== value) secrets.add(encoded);
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `text` with URL passwords and registered secrets replaced by ***. */
export function redactText(text: string): string {
  let out = text.replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
  if (secrets.size === 0) return out;
  // Longest first, so a secret that contains another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length >= MIN_SUBSTRING_SECRET) out = out.split(s).join(REDACTED);
    else out = out.replace(new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(s)}(?![A-Za-z0-9])`, 'g'), REDACTED);
  }
  return out;
}

/** A copy of `value` (JSON-like) with every string redacted and secret-named keys replaced. */
export function redactValue<T>(value: T): T {
  return redactAny(value, 0) as T;
}

function redactAny(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => redactAny(v, depth + 1));
  // Buffers, typed arrays and the like carry no text to redact and must keep their type.
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && typeof v === 'string' && v !== '' ? REDACTED : redactAny(v, depth + 1);
  }
  return out;
}
