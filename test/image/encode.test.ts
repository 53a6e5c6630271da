import t from 'tap';
import { decodeImage, decodeMask, sniffFormat } from '../../src/image/decode.js';
import { encodeMaskPng, encodePngGray, encodePngRgb } from '../../src/image/encode.js';
import { same } from '../helpers/same.js';

function pattern(n: number, mul: number): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * mul + 3) & 255;
  return a;
}

t.test('RGB PNG round trip', async (t) => {
  const img = { width: 7, height: 5, data: pattern(7 * 5 * 3, 37) };
  const png = encodePngRgb(img);
  t.equal(sniffFormat(png), 'png');
  t.equal(png[25], 2, 'IHDR colour type RGB');
  const back = decodeImage(png, 'rgb.png');
  t.same([back.width, back.height], [7, 5]);
  same(t, Array.from(back.data), Array.from(img.data));
});

t.test('grey PNG round trip', async (t) => {
  const img = { width: 3, height: 4, data: pattern(12, 23) };
  const png = encodePngGray(img);
  t.equal(png[25], 0, 'IHDR colour type grey');
  const back = decodeImage(png, 'grey.png');
  const expected = Array.from(img.data).flatMap((v) => [v, v, v]);
  same(t, Array.from(back.data), expected);
});

t.test('subarray views encode only their own bytes', async (t) => {
  const backing = pattern(100, 11);
  const view = backing.subarray(10, 10 + 6);
  const back = decodeImage(encodePngGray({ width: 3, height: 2, data: view }), 'view.png');
  t.same(
    Array.from(back.data).filter((_, i) => i % 3 === 0),
    Array.from(view),
  );
});

t.test('mask PNG is 0/255 on disk and 0/1 after decodeMask', async (t) => {
  const mask = { width: 4, height: 2, data: Uint8Array.from([0, 1, 1, 0, 1, 0, 0, 1]) };
  const png = encodeMaskPng(mask);
  const grey = decodeImage(png, 'mask.png');
  same(t, Array.from(grey.data).filter((_, i) => i % 3 === 0), [0, 255, 255, 0, 255, 0, 0, 255]);
  same(t, Array.from(decodeMask(png, 'mask.png').data), Array.from(mask.data));
});

t.test('inconsistent sizes are refused', async (t) => {
  t.throws(() => encodePngRgb({ width: 2, height: 2, data: new Uint8Array(11) }), RangeError);
  t.throws(() => encodePngGray({ width: 0, height: 2, data: new Uint8Array(0) }), RangeError);
});
