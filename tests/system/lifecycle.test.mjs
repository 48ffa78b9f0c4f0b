// Start, stop, restart: migrations are idempotent, the signing secret and
// the data survive a restart, shutdown is graceful.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, runCli, STORE_KIND } from './lib/harness.mjs';

test(`[${STORE_KIND}] data and tokens survive a restart; migrate is idempotent`, async () => {
  const argus = await startArgus();
  try {
    const org = await argus.org('Restart Org');
    const dt = await argus.req('POST', '/api/v1/device-types', { token: org.token, body: { name: 'Persisted' } });
    assert.equal(dt.status, 201);
    const st = await argus.stop();
    assert.equal(st.code, 0);
    assert.match(argus.log, /msg="stopped"/);

    const m1 = await argus.cli(['migrate']);
    assert.equal(m1.code, 0, m1.stderr);
    assert.match(m1.stdout, /current/);
    const m2 = await argus.cli(['migrate']);
    assert.equal(m2.code, 0);
    assert.doesNotMatch(m2.stderr, /migrations applied/, 'nothing left to apply');

    await argus.start();
    const again = await argus.req('GET', `/api/v1/device-types/${dt.json.id}`, { token: org.token });
    assert.equal(again.status, 200, 'the old token still verifies and the row is there');
    assert.equal(again.json.name, 'Persisted');
  } finally {
    await argus.close();
  }
});

test(`[${STORE_KIND}] a configured JWT secret replaces the stored one`, async () => {
  const argus = await startArgus({ extraArgs: ['--jwt-secret', 'first secret of some length'] });
  try {
    const org = await argus.org('Secret Org');
    assert.equal((await argus.req('GET', '/api/v1/auth/me', { token: org.token })).status, 200);
    await argus.stop();
    argus.extraArgs = ['--jwt-secret', 'second secret of some length'];
    await argus.start();
    const r = await argus.req('GET', '/api/v1/auth/me', { token: org.token });
    assert.ok(isProblem(r, 401), 'tokens signed with another secret are refused');
  } finally {
    await argus.close();
  }
});

test(`[${STORE_KIND}] --demo seeds the demo organisation once`, async () => {
  const argus = await startArgus({ extraArgs: ['--demo'] });
  try {
    assert.match(argus.log, /email=admin@demo\.argus\.local password=argus-demo/);
    const token = await argus.login('admin@demo.argus.local', 'argus-demo');
    const devices = await argus.req('GET', '/api/v1/devices?limit=500', { token });
    assert.ok(devices.json.pagination.total >= 5);
    const assets = await argus.req('GET', '/api/v1/assets?parentId=null', { token });
    assert.equal(assets.json.data.length, 1);
    const tree = await argus.req('GET', `/api/v1/assets/${assets.json.data[0].id}/children`, { token });
    assert.ok(tree.json.data.length >= 1);
    await argus.stop();
    await argus.start();
    const again = await argus.req('GET', '/api/v1/devices?limit=500', { token });
    assert.equal(again.json.pagination.total, devices.json.pagination.total, 'a second start seeds nothing');
  } finally {
    await argus.close();
  }
});

test('the store URL is checked', async () => {
  const r = await runCli(['migrate', '--store', 'mysql://nope']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot open the store/);
});
