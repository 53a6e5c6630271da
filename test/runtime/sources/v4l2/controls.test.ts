import t from 'tap';

import { controlKey, toControlCapability } from '../../../../src/runtime/sources/v4l2/capabilities.js';
import { ControlError, applyControls, validateControls } from '../../../../src/runtime/sources/v4l2/controls.js';
import { CID, FakeDevice, UVC_CONTROLS, UVC_CONTROLS_NEW_NAMES, UVC_WEBCAM } from './fake-device.js';

const controls = UVC_CONTROLS.map(toControlCapability);
const newNames = UVC_CONTROLS_NEW_NAMES.map(toControlCapability);

t.test('control keys follow v4l2-ctl', async (t) => {
  t.same(
    controls.map((c) => c.key),
    [
      'brightness',
      'contrast',
      'white_balance_temperature_auto',
      'white_balance_temperature',
      'power_line_frequency',
      'exposure_auto',
      'exposure_absolute',
      'focus_absolute',
      'privacy',
    ],
  );
  t.equal(controlKey('Auto Exposure'), 'auto_exposure');
});

t.test('by name: values converted and mode switches applied first', async (t) => {
  const plan = validateControls(controls, { brightness: 10, exposure_absolute: 300, exposure_auto: 'manual' });
  t.same(
    plan.controls.map((c) => [c.key, c.id, c.value]),
    [
      ['exposure_auto', CID.EXPOSURE_AUTO, 1],
      ['brightness', CID.BRIGHTNESS, 10],
      ['exposure_absolute', CID.EXPOSURE_ABSOLUTE, 300],
    ],
  );
  t.equal(plan.controls[0].description, 'exposure_auto = 1 ("Manual Mode")');
  t.match(plan.warnings.join('\n'), /control exposure_absolute .* is inactive/);
});

t.test('by id, menu by entry name, index or driver spelling, booleans in several spellings', async (t) => {
  const plan = validateControls(controls, {
    '0x00980900': -64,
    [String(CID.CONTRAST)]: '40',
    power_line_frequency: '50 Hz',
    'Exposure, Auto': 'Aperture Priority Mode',
    white_balance_temperature_auto: 'off',
    focus_absolute: 25,
  });
  const byKey = Object.fromEntries(plan.controls.map((c) => [c.key, c.value]));
  t.same(byKey, {
    brightness: -64,
    contrast: 40,
    power_line_frequency: 1,
    exposure_auto: 3,
    white_balance_temperature_auto: 0,
    focus_absolute: 25,
  });
  t.same(validateControls(controls, { power_line_frequency: 2 }).controls[0].value, 2);
  t.same(validateControls(controls, { white_balance_temperature_auto: true }).controls[0].value, 1);
});

t.test('names from either side of the Linux 5.16 rename', async (t) => {
  t.equal(validateControls(newNames, { exposure_auto: 'manual' }).controls[0].key, 'auto_exposure');
  t.equal(validateControls(controls, { auto_exposure: 'manual' }).controls[0].key, 'exposure_auto');
  t.equal(validateControls(newNames, { exposure_absolute: 100 }).controls[0].key, 'exposure_time_absolute');
  t.equal(validateControls(newNames, { white_balance_temperature_auto: false }).controls[0].key, 'white_balance_automatic');
});

t.test('errors name the control, the value and what is allowed', async (t) => {
  const range = t.throws(() => validateControls(controls, { brightness: 100 })) as ControlError;
  t.type(range, ControlError);
  t.equal(range.code, 'ERR_V4L2_CONTROL');
  t.equal(range.control, 'brightness');
  t.equal(range.value, 100);
  t.equal(range.message, 'control brightness ("Brightness", id 0x00980900): value 100 is out of range; allowed: -64..64 step 1');

  t.throws(() => validateControls(controls, { focus_absolute: 7 }), {
    message: /control focus_absolute .*: value 7 is not on the step \(nearest: 5 or 10\); allowed: 0\.\.250 step 5/,
  });
  t.throws(() => validateControls(controls, { brightness: 1.5 }), { message: /value 1\.5 is not an integer/ });
  t.throws(() => validateControls(controls, { brightness: 'bright' }), { message: /value "bright" is not an integer/ });
  t.throws(() => validateControls(controls, { exposure_auto: 'shutter' }), {
    message:
      /control exposure_auto \("Exposure, Auto", id 0x009a0901\): value "shutter" is not a menu entry; allowed: 1 = "Manual Mode" \(manual_mode\), 3 = "Aperture Priority Mode" \(aperture_priority_mode\)/,
  });
  t.throws(() => validateControls(controls, { exposure_auto: 2 }), { message: /value 2 is not a menu index/ });
  t.throws(() => validateControls(controls, { white_balance_temperature_auto: 'maybe' }), { message: /is not a boolean; allowed: true\/false/ });
  t.throws(() => validateControls(controls, { britness: 10 }), {
    code: 'ERR_V4L2_CONTROL',
    message: /no control named "britness"; the device has: brightness, contrast, .*focus_absolute, privacy/,
  });
  t.throws(() => validateControls(controls, { privacy: true }), { message: /control privacy .* is read-only/ });
  t.throws(() => validateControls(controls, { brightness: 1, '0x00980900': 2 }), { message: /is requested twice \(as "brightness" and "0x00980900"\)/ });
  t.throws(() => validateControls(controls, { '0x00112233': 1 }), { message: /no control named "0x00112233"/ });
});

t.test('controls that S_CTRL cannot set are refused', async (t) => {
  const odd = [
    toControlCapability({ id: 0x00a00001, name: 'Pixel Rate', type: 5, minimum: 0, maximum: 1e9, step: 1, defaultValue: 0, flags: 0, menu: [] }),
    toControlCapability({ id: 0x00a00002, name: 'Link Frequency', type: 9, minimum: 0, maximum: 1, step: 1, defaultValue: 0, flags: 0, menu: [{ index: 0, name: '456000000', value: 456000000 }, { index: 1, name: '912000000', value: 912000000 }] }),
    toControlCapability({ id: 0x00a00003, name: 'Disabled Thing', type: 1, minimum: 0, maximum: 1, step: 1, defaultValue: 0, flags: 0x0001, menu: [] }),
  ];
  t.throws(() => validateControls(odd, { pixel_rate: 5 }), { message: /value 5 cannot be set; allowed: nothing: type integer64/ });
  t.equal(validateControls(odd, { link_frequency: 912000000 }).controls[0].value, 1);
  t.throws(() => validateControls(odd, { link_frequency: 1 }), { message: /not one of the menu values; allowed: 456000000, 912000000/ });
  t.throws(() => validateControls(odd, { disabled_thing: 1 }), { message: /is disabled by the driver/ });
});

t.test('applyControls sets in order and reports what the driver kept', async (t) => {
  const device = new FakeDevice('/dev/video0', {
    ...UVC_WEBCAM,
    controls: UVC_CONTROLS,
    clampControl: (id, v) => (id === CID.EXPOSURE_ABSOLUTE ? Math.min(v, 1000) : v),
  });
  const plan = validateControls(controls, { exposure_absolute: 2000, exposure_auto: 'manual', brightness: 5 });
  const warnings = applyControls(device, plan, controls);
  t.same(
    device.calls.filter((c) => c.startsWith('setControl')),
    [`setControl ${CID.EXPOSURE_AUTO}=1`, `setControl ${CID.EXPOSURE_ABSOLUTE}=2000`, `setControl ${CID.BRIGHTNESS}=5`],
  );
  t.same(warnings, ['exposure_absolute: asked for 2000, the driver kept 1000']);
});
