/**
 * Command intake: messages on this device's cmd/ topics go to the dispatcher, whose reply goes to
 * the ReplySender. Retained commands are ignored (counted, `fault`, an event): a retained
 * `set-threshold` would otherwise run again on every reconnect.
 */
import type { CommandDispatcher } from '../commands.js';
import type { CommandReply, EventMessage } from '../schemas.js';
import { parseTopic, type DeviceTopics } from '../topics.js';
import { eventMessage, type Stamp } from './messages.js';

export interface CommandIntakeOptions {
  readonly topics: DeviceTopics;
  readonly dispatcher: Pick<CommandDispatcher, 'dispatch'>;
  readonly stamp: Stamp;
  readonly reply: (command: string, reply: CommandReply) => void;
  /** Sends an event now, outside the store. */
  readonly sendEvent: (event: EventMessage) => void;
  readonly onFault: (err: Error) => void;
}

export class CommandIntake {
  /** Retained commands seen and not acted on. */
  ignoredRetained = 0;

  constructor(private readonly o: CommandIntakeOptions) {}

  onMessage(topic: string, payload: Buffer, retain: boolean): void {
    const { topics } = this.o;
    const parsed = parseTopic(topic, topics.prefix);
    if (!parsed || parsed.kind !== 'cmd' || parsed.device !== topics.device) return;
    const name = parsed.command;
    if (retain) {
      // A retained command is an old order replayed on every (re)subscribe: never act on it.
      this.ignoredRetained++;
      const message = `ignored a retained ${name.slice(0, 64)} command (retained commands would run again on every reconnect); clear it by publishing an empty retained message to ${topic}`;
      this.o.onFault(new Error(message));
      this.o.sendEvent(eventMessage(this.o.stamp, 'command', 'warning', message, { kind: 'retained-command-ignored', topic }));
      return;
    }
    void this.o.dispatcher.dispatch(name, payload).then((reply) => this.o.reply(name, reply));
  }
}
