/** One CLI command: its usage text and what runs it. */
export interface Command {
  readonly usage: string;
  readonly run: (argv: string[]) => void | Promise<void>;
}
