// The 5,000-command drill, at the FleetLink (test/fleet/publisher.test.ts) and against a live
// `run` publishing to mosquitto (test/integration/run-mqtt.test.ts): the same files npm test runs with
// 500 commands each, at the full figure. The environment is set before either file is loaded.
process.env.LVUNET_TEST_FUZZ ??= '5000';
process.env.LVUNET_TEST_MALFORMED ??= '5000';
await import('../fleet/publisher.test.js');
await import('../integration/run-mqtt.test.js');
