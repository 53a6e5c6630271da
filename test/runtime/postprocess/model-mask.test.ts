import t from 'tap';

import { letterboxGeometry } from '../../../src/image/preprocess.js';
import { modelMaskToFrame } from '../../../src/runtime/postprocess/model-mask.js';
import { same } from '../../helpers/same.js';

t.test('stretched: each frame pixel takes the model pixel it falls in', (t) => {
  // 2x2 model mask: only the top-right pixel set.
  const m = modelMaskToFrame({ width: 2, height: 2, data: Uint8Array.of(0, 1, 0, 0) }, { width: 4, height: 2 });
  same(t, [...m.data], [0, 0, 1, 1, 0, 0, 0, 0]);
  t.end();
});

t.test('letterboxed: the padding is left out, the content rectangle fills the frame', (t) => {
  // A 4x2 frame letterboxed into 4x4: content rows 1..2; the padding rows are set and must not show.
  const lb = letterboxGeometry(4, 2, 4, 4);
  t.same([lb.newW, lb.newH, lb.ox, lb.oy], [4, 2, 0, 1]);
  const model = Uint8Array.of(1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1);
  const m = modelMaskToFrame({ width: 4, height: 4, data: model }, { width: 4, height: 2 }, lb);
  same(t, [...m.data], [0, 0, 1, 1, 1, 1, 0, 0]);
  t.end();
});
