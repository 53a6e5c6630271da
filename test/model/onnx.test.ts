import t from 'tap';
import { buildModels } from '../../src/model/export.js';
import { seededWeights } from '../../src/model/init.js';
import { readOnnx, OnnxReadError } from '../../src/model/onnx/read.js';
import { writeOnnx } from '../../src/model/onnx/write.js';
import { countMacs, countParameters } from '../../src/model/stats.js';
import { same } from '../helpers/same.js';

const models = buildModels({ height: 128, width: 256, lambda: 1 }, seededWeights({ seed: 5, randomBatchNorm: true }), { weights: 'seed:5', lambda: 1 });

t.test('write → read keeps graph, initializers, attributes and metadata', async (t) => {
  for (const model of [models.training, models.deployment]) {
    const back = readOnnx(writeOnnx(model), 'mem.onnx');
    t.equal(back.opset, 17);
    t.equal(back.irVersion, 8);
    t.same(back.graph.inputs, model.graph.inputs);
    same(t, back.graph.outputs, model.graph.outputs);
    t.same(back.graph.nodes, model.graph.nodes);
    t.same([...back.graph.initializers.keys()], [...model.graph.initializers.keys()]);
    for (const [name, tensor] of model.graph.initializers) {
      same(t, Array.from(back.graph.initializers.get(name)!.data as Float32Array), Array.from(tensor.data as Float32Array), name);
    }
    same(t, back.metadata, model.metadata);
    t.equal(countParameters(back.graph), countParameters(model.graph));
    t.equal(countMacs(back.graph), countMacs(model.graph));
  }
});

t.test('metadata says what the model is', async (t) => {
  const m = models.deployment.metadata;
  t.equal(m.get('mode'), 'deployment');
  t.equal(m.get('lambda'), '1');
  t.equal(m.get('weights'), 'seed:5');
  t.match(JSON.parse(m.get('normalization')!), { colorOrder: 'RGB', layout: 'NCHW', mean: [0.485, 0.456, 0.406] });
  t.match(JSON.parse(m.get('input')!), { name: 'image', shape: [1, 3, 128, 256] });
});

t.test('garbage and truncated files fail with the file name', async (t) => {
  const bytes = writeOnnx(models.deployment);
  t.throws(() => readOnnx(bytes.subarray(0, 1000), 'cut.onnx'), OnnxReadError);
  t.throws(() => readOnnx(bytes.subarray(0, 1000), 'cut.onnx'), /cut\.onnx: not a readable ONNX model/);
  t.throws(() => readOnnx(new TextEncoder().encode('hello, not onnx'), 'text.onnx'), /text\.onnx/);
  t.throws(() => readOnnx(new Uint8Array(0), 'empty.onnx'), /empty\.onnx: not a readable ONNX model \(no graph\)/);
});
