// The command fuzz corpus, shared by the FleetLink test and the live `run` test (no tests of its own).

/** Deterministic fuzz corpus: names and payloads that must all be refused. */
export function fuzzCases(count: number, seed: number): Array<[string, Buffer]> {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const names = ['set-threshold', 'snapshot', 'reload-model', 'status', 'reboot', 'SET-THRESHOLD', 'x', '..', 'a.b_c-d'];
  const valid: Record<string, unknown> = {
    'set-threshold': { id: 'v', value: 0.3 },
    snapshot: { id: 'v' },
    'reload-model': { id: 'v', path: '/m.onnx' },
    status: { id: 'v' },
  };
  const wrongValues: unknown[] = [null, true, 'str', -1, 2, 1e308, [], {}, [0.5], { value: 0.5 }, '0.5', Number.MAX_SAFE_INTEGER];
  const out: Array<[string, Buffer]> = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 8;
    let name = pick(names);
    let payload: Buffer;
    if (kind === 0) {
      payload = Buffer.alloc(Math.floor(rnd() * 300));
      for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(rnd() * 256);
    } else if (kind === 1) {
      const text = JSON.stringify(valid[name] ?? { id: 'v' });
      payload = Buffer.from(text.slice(0, Math.floor(rnd() * (text.length - 1))));
    } else if (kind === 2) {
      name = 'set-threshold';
      payload = Buffer.from(JSON.stringify({ id: `w${i}`, value: pick(wrongValues) }));
    } else if (kind === 3) {
      name = pick(['reboot', 'rm-rf', 'SNAPSHOT', 'status2', `c${i}`]);
      payload = Buffer.from(JSON.stringify({ id: `u${i}` }));
    } else if (kind === 4) {
      // Huge: numbers beyond double range, long strings, payloads over the command size limit.
      name = pick(['set-threshold', 'reload-model', 'status']);
      payload = Buffer.from(
        pick([
          `{"id":"h${i}","value":1e400}`,
          JSON.stringify({ id: 'h'.repeat(10_000), value: 0.5 }),
          JSON.stringify({ id: `h${i}`, path: 'p'.repeat(70_000) }),
          JSON.stringify({ id: `h${i}`, path: '/m.onnx', sha256: 'g'.repeat(64) }),
          '['.repeat(60_000),
        ]),
      );
    } else if (kind === 5) {
      name = pick(['snapshot', 'status', 'reload-model']);
      payload = Buffer.from(JSON.stringify(pick<unknown>([[], 'status', 42, null, { id: 42 }, { id: '' }, { id: 'e', extra: 1 }])));
    } else if (kind === 6) {
      name = 'reload-model';
      payload = Buffer.from(JSON.stringify(pick<unknown>([{ id: 'r' }, { id: 'r', path: '/a', url: 'https://b' }, { id: 'r', url: 'file:///etc/passwd' }, { id: 'r', path: 7 }])));
    } else {
      payload = Buffer.from(pick(['', ' ', 'null', 'undefined', '{"id":"a",}', "{'id':'a'}", '\u0000', '{"id":"a","value":NaN}']));
    }
    out.push([name, payload]);
  }
  return out;
}
