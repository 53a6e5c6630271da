#!/usr/bin/env node
import { UsageError } from './errors.js';
import { MODEL_BUILD_USAGE, MODEL_INSPECT_USAGE, modelBuild, modelInspect } from './model-commands.js';

const USAGE = `lvunet-edge: LV-UNet segmentation toolchain and edge runtime

commands:
  model build    build training-mode and fused deployment ONNX from weights or a seed
  model inspect  params, MACs, ops, opset and sha256 of an ONNX file

Run 'lvunet-edge <command> --help' for a command's options.`;

type Command = { usage: string; run: (argv: string[]) => void | Promise<void> };

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

const COMMANDS: Record<string, Command> = {
  'model build': { usage: MODEL_BUILD_USAGE, run: (a) => modelBuild(a, log) },
  'model inspect': { usage: MODEL_INSPECT_USAGE, run: (a) => modelInspect(a, print) },
};

export async function main(argv: string[]): Promise<number> {
  const key = [argv[0], argv[1]].join(' ');
  const command = COMMANDS[key] ?? COMMANDS[argv[0] ?? ''];
  const rest = COMMANDS[key] ? argv.slice(2) : argv.slice(1);
  if (!command) {
    print(USAGE);
    return argv.length === 0 || argv[0] === '--help' || argv[0] === 'help' ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    print(command.usage);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lvunet-edge: ${err.message}\n${err.usage ? `\n${err.usage}\n` : ''}`);
      return 2;
    }
    // Node's own argument parser errors are usage errors too.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`lvunet-edge: ${(err as Error).message}\n\n${command.usage}\n`);
      return 2;
    }
    process.stderr.write(`lvunet-edge: ${(err as Error).message}\n`);
    if (process.env.LVUNET_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`lvunet-edge: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
