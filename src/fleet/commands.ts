/**
 * Turns raw command messages into replies. dispatch() never throws and never rejects: whatever
 * arrives on `cmd/<name>` (random bytes, truncated JSON, wrong types, unknown names, huge payloads)
 * becomes an error reply naming the problem, and a throwing handler becomes an error reply too.
 */
import {
  COMMAND_NAMES,
  REPLY_SCHEMA,
  isCommandName,
  requestId,
  validateCommand,
  type CommandMap,
  type CommandName,
  type CommandReply,
} from './schemas.js';
import { redactValue } from '../util/redact.js';

export type CommandHandler<K extends CommandName> = (command: CommandMap[K]) => unknown;

export interface DispatcherOptions {
  /** Larger payloads are refused before parsing; default 64 KiB (commands are small). */
  maxPayloadBytes?: number;
  /** A handler that has not settled by then gets an error reply; default 30 s. */
  handlerTimeoutMs?: number;
}

const MAX_ERROR_CHARS = 2000;

export class CommandDispatcher {
  private readonly handlers = new Map<CommandName, { run: (command: unknown) => unknown; timeoutMs: number | undefined }>();
  private readonly maxPayloadBytes: number;
  private readonly handlerTimeoutMs: number;

  constructor(options: DispatcherOptions = {}) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? 64 * 1024;
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 30_000;
  }

  /**
   * Registers (or replaces) the handler of a command; what it returns or resolves to is the reply's
   * result. `timeoutMs` overrides the dispatcher's handler timeout for this command (a model update
   * may download and load for minutes).
   */
  on<K extends CommandName>(name: K, handler: CommandHandler<K>, options: { timeoutMs?: number } = {}): void {
    this.handlers.set(name, { run: handler as (command: unknown) => unknown, timeoutMs: options.timeoutMs });
  }

  has(name: CommandName): boolean {
    return this.handlers.has(name);
  }

  /** The reply to a raw command, redacted (src/util/redact.ts): a status payload or an error never carries a password. */
  async dispatch(name: string, payload: Uint8Array): Promise<CommandReply> {
    return redactValue(await this.answer(name, payload));
  }

  private async answer(name: string, payload: Uint8Array): Promise<CommandReply> {
    if (payload.length > this.maxPayloadBytes) {
      return fail(null, `payload of ${payload.length} bytes exceeds the ${this.maxPayloadBytes}-byte limit for commands`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
    } catch (err) {
      return fail(null, `malformed JSON: ${(err as Error).message}`);
    }
    const id = requestId(parsed);
    if (!isCommandName(name)) {
      return fail(id, `unknown command ${JSON.stringify(name.slice(0, 64))}; known: ${COMMAND_NAMES.join(', ')}`);
    }
    const checked = validateCommand(name, parsed);
    if (!checked.ok) return fail(id, `invalid ${name} command: ${checked.errors.slice(0, 10).join('; ')}`);
    const handler = this.handlers.get(name);
    if (!handler) return fail(id, `command ${name} is not supported by this device`);
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = handler.timeoutMs ?? this.handlerTimeoutMs;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs} ms`)), timeoutMs);
      });
      const result = await Promise.race([Promise.resolve().then(() => handler.run(checked.value)), timeout]);
      return result === undefined
        ? { schema: REPLY_SCHEMA, id: checked.value.id, ok: true }
        : { schema: REPLY_SCHEMA, id: checked.value.id, ok: true, result };
    } catch (err) {
      return fail(checked.value.id, err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
  }
}

function fail(id: string | null, error: string): CommandReply {
  return { schema: REPLY_SCHEMA, id, ok: false, error: error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}…` : error };
}
