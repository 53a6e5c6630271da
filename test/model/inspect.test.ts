import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModels } from '../../src/model/export.js';
import { seededWeights } from '../../src/model/init.js';
import { inspectOnnx } from '../../src/model/inspect.js';
import type { Node } from '../../src/model/ir.js';
import { writeOnnx } from '../../src/model/onnx/write.js';

t.test('inspect reads constants written as Constant nodes (as torch.onnx.export does) like initializers', async (t) => {
  const dir = t.testdir({});
  const { deployment } = buildModels({ height: 256, width: 256, lambda: 1 }, seededWeights({ seed: 3, randomBatchNorm: true }), { weights: 'seed:3', lambda: 1 });
  const plain = join(dir, 'plain.onnx');
  writeFileSync(plain, writeOnnx(deployment));

  // Each Resize gets its scales from its own Constant node instead of the shared initializer.
  const g = deployment.graph;
  const nodes: Node[] = [];
  const initializers = new Map(g.initializers);
  let k = 0;
  for (const n of g.nodes) {
    if (n.op !== 'Resize') {
      nodes.push(n);
      continue;
    }
    const name = `scales_${k++}`;
    nodes.push({ op: 'Constant', name: `${name}.constant`, inputs: [], outputs: [name], attributes: [{ name: 'value', type: 'tensor', value: g.initializers.get(n.inputs[2])! }] });
    nodes.push({ ...n, inputs: [n.inputs[0], n.inputs[1], name] });
  }
  initializers.delete('upsample2.scales');
  const withConstants = join(dir, 'constants.onnx');
  writeFileSync(withConstants, writeOnnx({ ...deployment, graph: { ...g, nodes, initializers } }));

  const a = inspectOnnx(plain);
  const b = inspectOnnx(withConstants);
  t.equal(k, 7, 'seven Resizes rewritten');
  t.equal(b.ops.Constant, 7);
  t.equal(b.params, a.params, `params ${b.params}`);
  t.equal(b.macs, a.macs, `MACs ${b.macs}`);
});
