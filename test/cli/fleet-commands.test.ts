/**
 * `lvunet-edge fleet ...`: argument handling (in process: each is a UsageError, which main.ts turns
 * into exit status 2) and the database-only subcommands, a few as real processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { fleetGroup, fleetIngest, fleetRollout, fleetSend, fleetServe, fleetStatusCommand } from '../../src/cli/fleet-commands.js';
import { UsageError } from '../../src/cli/errors.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-fleet-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${path.join(dir, 'fleet.db')}`;

t.test('usage errors name what is missing', async (t) => {
  const out = (): void => {};
  const cases: [(argv: string[]) => Promise<void>, string[], RegExp][] = [
    [(a) => fleetIngest(a, out), ['--db', db], /--mqtt URL is required/],
    [(a) => fleetStatusCommand(a, out), [], /--db sqlite:FILE or --db postgres/],
    [(a) => fleetSend(a, out), ['--device', 'a', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db], /give one COMMAND/],
    [(a) => fleetSend(a, out), ['status', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db], /give --device ID \(repeatable\) or --group NAME/],
    [(a) => fleetSend(a, out), ['status', '--device', 'a', '--args', '{x', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db], /--args is not JSON/],
    [(a) => fleetSend(a, out), ['status', '--device', 'a', '--timeout-s', '0', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db], /--timeout-s must be a whole number >= 1, got 0/],
    [(a) => fleetGroup(a, out), ['add', 'ward', 'bad/id', '--db', db], /invalid device id "bad\/id"/],
    [(a) => fleetGroup(a, out), ['frob', '--db', db], /give add\|remove NAME DEVICE\.\.\. or list/],
    [(a) => fleetRollout(a, out, out), ['--db', db], /give one BUNDLE/],
    [(a) => fleetRollout(a, out, out), ['/b', '--db', db], /--group NAME is required/],
    [(a) => fleetRollout(a, out, out), ['/b', '--group', 'g', '--precision', 'fp8', '--db', db], /--precision must be fp32, fp16 or int8/],
    [(a) => fleetServe(a, out), ['--port', '99999', '--db', db], /--port must be 0\.\.65535/],
    [(a) => fleetServe(a, out), ['extra', '--db', db], /unexpected argument extra/],
  ];
  for (const [run, args, message] of cases) {
    const err = await run(args).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof UsageError, args.join(' '));
    t.match((err as Error).message, message);
  }
});

t.test('groups, status and rollouts on the database alone', async (t) => {
  t.match(runCli(['fleet', 'status', '--db', db]).stdout, /no devices in sqlite:.* yet/);
  const added = runCli(['fleet', 'group', 'add', 'ward-3', 'cart-2', 'cart-1', '--db', db]);
  t.equal(added.status, 0, added.stderr);
  t.match(added.stdout, /ward-3: added 2 device\(s\); members: cart-1 cart-2/);
  const printed: string[] = [];
  const print = (line: string): void => {
    printed.push(line);
  };
  await fleetGroup(['remove', 'ward-3', 'cart-2', '--db', db], print);
  t.match(printed.pop(), /removed 1 device\(s\); members: cart-1/);
  await fleetGroup(['list', '--db', db, '--json'], print);
  t.same(JSON.parse(printed.pop() ?? ''), { 'ward-3': ['cart-1'] });
  await fleetRollout(['--list', '--db', db], print, print);
  t.match(printed.pop(), /no rollouts/);
  const empty = runCli(['fleet', 'rollout', 'https://b.example/1/', '--group', 'nobody', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db]);
  t.equal(empty.status, 1);
  t.match(empty.stderr, /group "nobody" has no devices in sqlite:/);
  const out = (): void => {};
  await t.rejects(fleetRollout(['/b', '--group', 'ward-3', '--waves', '50,10,100', '--mqtt', 'mqtt://127.0.0.1:1', '--db', db], out, out), /--waves 50,10,100: shares must grow/);
  await t.rejects(fleetRollout(['--abort', 'ro-nope', '--db', db], out, out), /no rollout ro-nope in sqlite:/);
  await t.rejects(fleetStatusCommand(['--db', 'mysql://x'], out), /is neither sqlite:FILE or postgres/);
  t.match(runCli(['fleet', 'serve', '--help']).stdout, /The fleet page/);
});
