/**
 * `npm run bench`: every figure the issues ask for, measured side by side in one run, written to
 * bench/results/bench.json and bench/results/bench.md and printed as a short table.
 * `--quick` shortens the runs (for a smoke check, not for reporting).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchModel } from './model.js';

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const outDir = join(process.cwd(), 'bench', 'results');
  const model = await benchModel(log, quick);
  const result = {
    when: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    quick,
    model,
  };
  const md: string[] = [
    `# lvunet-edge benchmark (${result.when}${quick ? ', quick' : ''})`,
    '',
    `${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}; ONNX Runtime CPU EP, 256x256, batch 1.`,
    '',
    '| model | params | GMACs | ONNX MB | 1 thread median ms | 2 threads median ms |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const [name, f] of Object.entries(model.forms)) {
    md.push(
      `| ${name} | ${f.params.toLocaleString('en-US')} | ${(f.macs / 1e9).toFixed(4)} | ${(f.onnx_bytes / 1e6).toFixed(2)} | ` +
        `${model.latency['1_threads'][name].median_ms.toFixed(2)} | ${model.latency['2_threads'][name].median_ms.toFixed(2)} |`,
    );
  }
  const ours = model.latency['2_threads'].deployment.median_ms;
  const paper = model.latency['2_threads']['deployment (paper-style, encoder BN unfolded)'].median_ms;
  md.push(
    '',
    `Deployment vs paper-style export, same run, 2 threads: ${(ours / paper).toFixed(3)}x ` +
      `(${ours.toFixed(2)} vs ${paper.toFixed(2)} ms). Paper code's own export measured earlier on this kind of machine: ` +
      `${model.reference.paper_deployment_2_threads_ms} ms.`,
  );
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(outDir, 'bench.md'), `${md.join('\n')}\n`);
  process.stdout.write(`${md.join('\n')}\n\nwritten: bench/results/bench.json, bench/results/bench.md\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
