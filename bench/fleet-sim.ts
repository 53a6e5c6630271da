/**
 * What the fleet benches share: the simulated device's result payload, the percentile they report,
 * and a `fleet ingest` child process (started, killed, restarted and read back by its log).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RESULT_SCHEMA, type ResultBody } from '../src/fleet/schemas.js';
import { CLI } from '../test/helpers/paths.js';

// The compiled CLI: beside this file when it runs compiled (dist/bench), under dist/ when tap runs the TypeScript.
const CLI_JS = import.meta.url.endsWith('.ts') ? CLI : fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A result as a 640x480 device publishes it, with an RLE of `rleBytes` characters. */
export function simulatedResult(frame: number, rleBytes: number): ResultBody {
  const now = new Date().toISOString();
  return {
    schema: RESULT_SCHEMA,
    frame: { id: `frame-${frame}`, seq: frame, width: 640, height: 480, format: 'YUYV' },
    model: { sha256: 'ab'.repeat(32), precision: 'fp32' },
    provider: 'CPUExecutionProvider',
    captureTime: now,
    completionTime: now,
    latencyMs: { capture: 1.2, preprocess: 2.1, queue: 0.3, inference: 21.7, postprocess: 3.4, total: 28.7 },
    coverage: 0.1234,
    components: [
      { area: 8123, areaPercent: 12.39, bbox: { x: 40, y: 52, width: 120, height: 96 }, centroid: { x: 101.5, y: 99.2 }, meanProbability: 0.912 },
      { area: 312, areaPercent: 0.48, bbox: { x: 200, y: 10, width: 20, height: 18 }, centroid: { x: 210.1, y: 19.4 }, meanProbability: 0.731 },
    ],
    droppedComponents: 0,
    rle: { size: [480, 640], counts: 'r'.repeat(rleBytes) },
  };
}

/** Nearest-rank percentile of an ascending array, rounded to `decimals`. */
export function percentile(sorted: Float64Array, p: number, decimals = 1): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  const scale = 10 ** decimals;
  return Math.round(sorted[i] * scale) / scale;
}

/** `--name value` from this process's arguments (the benches also run as scripts). */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** One `lvunet-edge fleet ingest` process; `start()` resolves when its log shows `readyMark`. */
export class IngestProcess {
  private child: ChildProcess | undefined;
  output = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly args: string[],
    /** A line of the ingest's log that says it is reading (after a restart too). */
    private readonly readyMark: string,
    private readonly onLine: (line: string) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [CLI_JS, 'fleet', 'ingest', ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    // Only this start's output counts: after a restart, the first run's log already has the mark.
    const mark = this.output.length;
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString();
        this.output += text;
        for (const line of text.split('\n')) if (line !== '') this.onLine(line);
        if (this.output.indexOf(this.readyMark, mark) >= 0) resolve();
      };
      child.stderr.on('data', onData);
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`fleet ingest exited (${code}) before "${this.readyMark}":\n${this.output.slice(-2000)}`)));
    });
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    this.child?.kill(signal);
    await this.exited;
  }

  /** Commits the ingest had to retry ("ingest: commit of N rows failed …" lines). */
  retries(): number {
    return [...this.output.matchAll(/ingest: commit of \d+ row/g)].length;
  }

  /** The "N redelivered duplicate(s) ignored" of the last report. */
  redelivered(): number | undefined {
    const all = [...this.output.matchAll(/(\d+) redelivered duplicate/g)];
    return all.length === 0 ? undefined : Number(all[all.length - 1][1]);
  }
}
