/**
 * `same(t, found, wanted)`: t.same, but typed arrays are compared element by element in a plain loop.
 * tap's deep comparison walks a typed array like an object, about 4 µs an element (4 s for one
 * 1 MP mask, measured), which made image tests the slowest part of `npm test`. Semantics match
 * t.same's for numbers: values equal (0 equals -0, NaN equals NaN), lengths equal, the array types
 * may differ. Anything that is not a pair of typed arrays goes to t.same unchanged.
 */
import type { Test } from 'tap';

type TypedArray = Exclude<ArrayBufferView, DataView>;

function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

export function same(t: Pick<Test, 'same' | 'pass' | 'fail'>, found: unknown, wanted: unknown, message = 'should be equivalent'): boolean {
  if (!isTypedArray(found) || !isTypedArray(wanted)) return t.same(found, wanted, message);
  const a = found as unknown as ArrayLike<number | bigint>;
  const b = wanted as unknown as ArrayLike<number | bigint>;
  if (a.length !== b.length) return t.fail(message, { found: `${found.constructor.name} of length ${a.length}`, wanted: `${wanted.constructor.name} of length ${b.length}` });
  let first = -1;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    // x !== x: NaN (t.same treats two NaNs as equal).
    if (x !== y && !(x !== x && y !== y)) {
      if (first < 0) first = i;
      differing++;
    }
  }
  if (differing === 0) return t.pass(message);
  return t.fail(message, {
    found: `${a[first]} at index ${first}`,
    wanted: `${b[first]} at index ${first}`,
    note: `${differing} of ${a.length} elements differ, the first at index ${first}`,
  });
}
