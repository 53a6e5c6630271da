// The 5,000-command drill against a live `run` publishing to mosquitto: the same file as
// test/integration/run-mqtt.test.ts (which npm test runs with 500 commands), at the full figure.
process.env.LVUNET_TEST_MALFORMED ??= '5000';
await import('../integration/run-mqtt.test.js');
