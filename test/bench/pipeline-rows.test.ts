import t from 'tap';

import { pipelineRows, rowName } from '../../bench/pipeline.js';

t.test('npm run bench measures 1080p MJPEG, YUYV and NV12 at 1 and 2 threads, and 1080p MJPEG paced at 30 and 60 fps', async (t) => {
  const names = pipelineRows().map(rowName);
  for (const source of ['1920x1080 MJPEG q85', '1920x1080 YUYV', '1920x1080 NV12', '640x480 YUYV']) {
    t.ok(names.includes(`${source}, 1 thread`), `${source}, 1 thread`);
    t.ok(names.includes(`${source}, 2 threads`), `${source}, 2 threads`);
  }
  t.ok(names.includes('1920x1080 MJPEG q85, 1 thread, paced 30 fps'));
  t.ok(names.includes('1920x1080 MJPEG q85, 1 thread, paced 60 fps'));
  t.equal(new Set(names).size, names.length, 'row names are unique (they key bench.json)');
});
