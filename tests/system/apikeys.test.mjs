// Device API keys: the secret is shown once and stored hashed; list shows
// prefixes; rotate replaces; revoke ends a key at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, STORE_KIND } from './lib/harness.mjs';

let argus, org, device;

before(async () => {
  argus = await startArgus();
  org = await argus.org('Keys Ltd');
  const dt = await argus.req('POST', '/api/v1/device-types', { token: org.token, body: { name: 'K' } });
  device = (await argus.req('POST', '/api/v1/devices', { token: org.token, body: { name: 'KD', deviceTypeId: dt.json.id } })).json;
});
after(async () => { await argus.close(); });

const call = (m, p, b) => argus.req(m, p, { token: org.token, body: b });

test(`[${STORE_KIND}] create shows the secret once; list shows prefixes only`, async () => {
  const c = await call('POST', `/api/v1/devices/${device.id}/api-keys`, { name: 'field unit' });
  assert.equal(c.status, 201);
  assert.match(c.json.key, /^ak_[0-9a-f]{12}_[0-9a-f]{64}$/);
  assert.equal(c.json.key.slice(3, 15), c.json.prefix);
  const noBody = await call('POST', `/api/v1/devices/${device.id}/api-keys`);
  assert.equal(noBody.status, 201);
  assert.equal(noBody.json.name, 'default');
  const l = await call('GET', `/api/v1/devices/${device.id}/api-keys`);
  assert.equal(l.status, 200);
  assert.equal(l.json.pagination.total, 2);
  assert.ok(!l.text.includes(c.json.key.slice(16)), 'no secret in the list');
  assert.deepEqual(Object.keys(l.json.data[0]).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt']);
  const who = await argus.req('GET', '/api/v1/auth/device', { apiKey: c.json.key });
  assert.equal(who.status, 200);
  assert.equal(who.json.id, device.id);
  const viaAuthz = await argus.req('GET', '/api/v1/auth/device', { headers: { authorization: `ApiKey ${c.json.key}` } });
  assert.equal(viaAuthz.status, 200);
});

test(`[${STORE_KIND}] wrong, altered and missing keys are refused`, async () => {
  const c = await call('POST', `/api/v1/devices/${device.id}/api-keys`, {});
  const k = c.json.key;
  const flip = k.slice(0, -1) + (k.endsWith('0') ? '1' : '0');
  for (const bad of [flip, 'ak_short', k + 'x', '']) {
    const r = await argus.req('GET', '/api/v1/auth/device', { headers: { 'x-api-key': bad } });
    assert.ok(isProblem(r, 401), `key ${bad}`);
  }
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/device'), 401));
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/device', { token: org.token }), 401), 'a user token is not a device key');
});

test(`[${STORE_KIND}] rotate replaces a key, revoke ends it`, async () => {
  const c = await call('POST', `/api/v1/devices/${device.id}/api-keys`, { name: 'rotating' });
  const r = await call('POST', `/api/v1/devices/${device.id}/api-keys/${c.json.id}/rotate`);
  assert.equal(r.status, 201);
  assert.equal(r.json.name, 'rotating');
  assert.notEqual(r.json.key, c.json.key);
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/device', { apiKey: c.json.key }), 401), 'the old key stops at once');
  assert.equal((await argus.req('GET', '/api/v1/auth/device', { apiKey: r.json.key })).status, 200);
  assert.ok(isProblem(await call('POST', `/api/v1/devices/${device.id}/api-keys/${c.json.id}/rotate`), 404), 'a revoked key cannot be rotated');

  // Ingest caches verified keys for a second; revoking ends that at once.
  const ingest = (key) => argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: key, body: { deviceId: device.id, metrics: { x: 1 } } });
  assert.equal((await ingest(r.json.key)).status, 202);
  const d = await call('DELETE', `/api/v1/devices/${device.id}/api-keys/${r.json.id}`);
  assert.equal(d.status, 204);
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/device', { apiKey: r.json.key }), 401));
  assert.ok(isProblem(await ingest(r.json.key), 401), 'a revoked key stops ingest at once');
  assert.ok(isProblem(await call('DELETE', `/api/v1/devices/${device.id}/api-keys/${r.json.id}`), 404));
  const l = await call('GET', `/api/v1/devices/${device.id}/api-keys`);
  const rev = l.json.data.find((x) => x.id === r.json.id);
  assert.match(rev.revokedAt, /Z$/);
  const audit = await call('GET', `/api/v1/audit?entityType=api%20key&entityId=${r.json.id}`);
  assert.deepEqual(audit.json.data.map((e) => e.action), ['revoke', 'create']);
});

test(`[${STORE_KIND}] keys of a deleted device stop working`, async () => {
  const dt = await call('POST', '/api/v1/device-types', { name: 'K2' });
  const dev = (await call('POST', '/api/v1/devices', { name: 'gone', deviceTypeId: dt.json.id })).json;
  const k = (await call('POST', `/api/v1/devices/${dev.id}/api-keys`, {})).json.key;
  assert.equal((await argus.req('GET', '/api/v1/auth/device', { apiKey: k })).status, 200);
  const ingest = () => argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: k, body: { deviceId: dev.id, metrics: { x: 1 } } });
  assert.equal((await ingest()).status, 202);
  assert.equal((await call('DELETE', `/api/v1/devices/${dev.id}`)).status, 204);
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/device', { apiKey: k }), 401));
  assert.ok(isProblem(await ingest(), 401), "a deleted device's key stops ingest at once");
});
