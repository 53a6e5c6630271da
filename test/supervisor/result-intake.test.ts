// ResultIntake: what the supervisor does with each result, with fake sinks and a fake publisher.
import t from 'tap';

import type { ResultSink, SinkItem } from '../../src/runtime/sinks/index.js';
import { ResultIntake, type ResultIntakeOptions } from '../../src/supervisor/result-intake.js';
import { sampleBody } from '../fleet/fixtures.js';

class MemorySink implements ResultSink {
  readonly description = 'memory';
  readonly written: string[] = [];
  constructor(private readonly failAt = -1) {}
  async open(): Promise<void> {}
  async write(item: SinkItem): Promise<void> {
    if (this.written.length === this.failAt) throw new Error(`disk full writing ${item.result.frame.id}`);
    this.written.push(item.result.frame.id);
  }
  async close(): Promise<void> {}
}

function intake(over: Partial<ResultIntakeOptions> = {}) {
  const calls = { published: [] as string[], first: 0, latencies: [] as number[], bad: [] as string[], limit: 0, writeErrors: [] as Error[] };
  const sink = new MemorySink();
  const i = new ResultIntake({
    sinks: [sink],
    everyN: 1,
    publish: (r) => calls.published.push(r.frame.id),
    onFirst: () => calls.first++,
    onLatency: (ms) => calls.latencies.push(ms),
    onBad: (m) => calls.bad.push(m),
    onLimit: () => calls.limit++,
    onWriteError: (e) => calls.writeErrors.push(e),
    ...over,
  });
  return { i, calls, sink };
}

const result = (seq: number): Record<string, unknown> => sampleBody(seq) as unknown as Record<string, unknown>;

t.test('every result goes to the sinks in order; every Nth to the fleet', async (t) => {
  const { i, calls, sink } = intake({ everyN: 3 });
  for (let n = 0; n < 7; n++) i.take(result(n));
  t.equal(await i.settled(), undefined);
  t.same(sink.written, ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6']);
  t.same(calls.published, ['f0', 'f3', 'f6']);
  t.equal(calls.first, 1, 'the first result is announced once');
  t.equal(calls.latencies.length, 7);
  i.everyN = 1;
  i.take(result(7));
  t.same(calls.published, ['f0', 'f3', 'f6', 'f7'], 'a changed every_n applies from the next result');
});

t.test('--max-frames: results after the limit are counted, not taken; the limit is said once', async (t) => {
  const { i, calls, sink } = intake({ maxFrames: 2 });
  t.equal(i.remaining(), 2);
  for (let n = 0; n < 4; n++) i.take(result(n));
  await i.settled();
  t.same(sink.written, ['f0', 'f1']);
  t.equal(i.results, 2);
  t.equal(i.pastLimit, 2);
  t.equal(calls.limit, 1);
  t.equal(i.remaining(), 0);
  t.equal(intake().i.remaining(), undefined, 'no limit, nothing to count down');
});

t.test('a bad result is a fault, not a result', async (t) => {
  const { i, calls, sink } = intake();
  i.take({ schema: 'lvunet-edge/result@1', frame: 'nope' });
  await i.settled();
  t.equal(i.results, 0);
  t.same(sink.written, []);
  t.match(calls.bad, [/^worker sent a bad result: /]);
  t.equal(calls.first, 0);
});

t.test('a sink that fails to write is reported, and settled() returns its error', async (t) => {
  const failing = new MemorySink(1);
  const { i, calls } = intake({ sinks: [failing] });
  i.take(result(0));
  i.take(result(1));
  i.take(result(2));
  const err = await i.settled();
  t.match(err?.message, /disk full writing f1/);
  t.same(failing.written, ['f0'], 'writes after a failure do not run');
  i.take(result(3));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls.writeErrors.length, 1, 'reported once, not again for every later result');
  t.match(calls.writeErrors[0].message, /disk full writing f1/);
});
