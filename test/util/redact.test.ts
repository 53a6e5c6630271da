// issue 18 finding 8: broker passwords in `--mqtt mqtt://user:pass@host` were logged verbatim.
// One redaction function for every log line, event and reply; tested here on its own and in
// test/integration/run-redaction.test.ts on the real `run` output.
import t from 'tap';
import { CommandDispatcher } from '../../src/fleet/commands.js';
import { clearSecrets, redactText, redactValue, registerSecret } from '../../src/util/redact.js';
import { same } from '../helpers/same.js';

t.afterEach(() => clearSecrets());

t.test('URL passwords are redacted in any scheme, the user name kept', async (t) => {
  t.equal(redactText('mqtt mqtt://user:s3cret@127.0.0.1:1883 as cart'), 'mqtt mqtt://user:***@127.0.0.1:1883 as cart');
  t.equal(redactText('"mqtts://op:p:a:ss@broker:8883/x" refused'), '"mqtts://op:***@broker:8883/x" refused', 'a password with colons');
  t.equal(redactText('wss://u:%40t%2F@h/mqtt and http://a:b@c'), 'wss://u:***@h/mqtt and http://a:***@c', 'encoded characters, several URLs');
  t.equal(redactText('ws://:onlypass@h'), 'ws://:***@h');
  t.equal(redactText('mqtt://127.0.0.1:1883 and user@example.com'), 'mqtt://127.0.0.1:1883 and user@example.com', 'no credentials, nothing changed');
});

t.test('registered secrets are redacted anywhere, encoded too; short ones as whole tokens only', async (t) => {
  registerSecret('p@ss/word');
  t.equal(redactText('password p@ss/word was refused'), 'password *** was refused');
  t.equal(redactText('mqtt://u:p%40ss%2Fword@h'), 'mqtt://u:***@h');
  t.equal(redactText('token=p%40ss%2Fword'), 'token=***', 'the URL-encoded form');
  registerSecret('ab1');
  t.equal(redactText('label ab1 in tab1e'), 'label *** in tab1e');
  registerSecret('');
  registerSecret(null);
  t.equal(redactText('nothing else'), 'nothing else');
});

t.test('values: strings deep inside, secret-named keys, buffers untouched', async (t) => {
  const buf = Buffer.from('x');
  const v = redactValue({ link: { url: 'mqtt://a:b@h' }, list: ['mqtt://c:d@h', 3], password: 'x', token: '', data: buf, n: null });
  same(t, v, { link: { url: 'mqtt://a:***@h' }, list: ['mqtt://c:***@h', 3], password: '***', token: '', data: buf, n: null });
  t.equal(v.data, buf);
});

t.test('every command reply is redacted, results and errors', async (t) => {
  const d = new CommandDispatcher();
  registerSecret('correct-horse');
  d.on('status', () => ({ url: 'mqtt://user:correct-horse@broker', note: 'pw correct-horse' }));
  d.on('snapshot', () => {
    throw new Error('cannot reach mqtt://user:pw123456@broker');
  });
  const ok = await d.dispatch('status', Buffer.from('{"id":"1"}'));
  t.same(ok, { schema: 'lvunet-edge/reply@1', id: '1', ok: true, result: { url: 'mqtt://user:***@broker', note: 'pw ***' } });
  const bad = await d.dispatch('snapshot', Buffer.from('{"id":"2"}'));
  t.match(bad, { ok: false, error: 'cannot reach mqtt://user:***@broker' });
});
