// The training plot (curves.svg): labelled axes, one polyline per series and finite run, round
// axis maxima, gaps for non-finite values, and a document a browser parses (checked by structure).
import t from 'tap';

import { niceMax, plotCurves } from '../../src/train/plot.js';
import type { EpochRecord } from '../../src/train/trainer.js';

const rec = (epoch: number, trainLoss: number, valLoss: number, valDice: number, lambda: number): EpochRecord => ({
  epoch, lambda, lr: 1e-3, trainLoss, valLoss, valDice, valDiceStd: 0.1, imagesPerSecond: 3, seconds: 100,
});

t.test('niceMax rounds up to 1, 2 or 5 times a power of ten', async (t) => {
  t.same([0.73, 1.3, 2.01, 4.2, 7, 0, NaN].map(niceMax), [1, 2, 5, 5, 10, 1, 1]);
});

t.test('curves.svg: labelled axes, legends, every epoch plotted, gaps for NaN', async (t) => {
  const records = Array.from({ length: 60 }, (_, i) => rec(i + 1, 1.3 - i / 60, 1.4 - i / 70, i === 10 ? NaN : 0.2 + i / 100, Math.min(1, i / 50)));
  const svg = plotCurves(records);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.ok(svg.trimEnd().endsWith('</svg>'));
  for (const label of ['>loss<', '>Dice / λ<', '>epoch<', '>train loss<', '>validation loss<', '>validation Dice<', '>λ<']) t.ok(svg.includes(label), label);
  for (const tick of ['>2<', '>1.6<', '>0.8<', '>10<', '>60<']) t.ok(svg.includes(tick), `tick ${tick}`);
  const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').length);
  // train loss 60, val loss 60, Dice 10 + 49 around the NaN, λ 60.
  t.same(lines.sort((a, b) => a - b), [10, 49, 60, 60, 60]);
  const opened = (svg.match(/<(?!\/)[a-z]+/g) ?? []).length;
  const closed = (svg.match(/\/>|<\/[a-z]+>/g) ?? []).length;
  t.equal(opened, closed, 'every element closed');
  t.match(plotCurves([rec(1, 0.5, 0.6, 0.4, 0)]), /<circle /, 'one epoch: points, not lines');
});
