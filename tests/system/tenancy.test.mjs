// Organisation B walks every endpoint against organisation A's resources and
// gets 404 — never 403, never A's data — and A's data is unchanged after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, runCli, STORE_KIND } from './lib/harness.mjs';
import { populate } from './lib/fixtures.mjs';

let argus, A, B, fa;

before(async () => {
  argus = await startArgus();
  A = await argus.org('Tenant A');
  B = await argus.org('Tenant B');
  fa = await populate(argus, A.token);
});
after(async () => { await argus.close(); });

const idFor = {
  'device-types': () => fa.deviceType.id,
  devices: () => fa.device.id,
  'asset-types': () => fa.assetType.id,
  assets: () => fa.asset.id,
  spaces: () => fa.space.id,
  persons: () => fa.person.id,
  'activity-types': () => fa.activityType.id,
  activities: () => fa.activity.id,
  users: () => fa.user.id,
  dlq: () => fa.dlq.id,
};

function concrete(path) {
  const m = /^\/api\/v1\/([a-z-]+)\/\{id\}/.exec(path);
  if (m) return path.replace('{id}', idFor[m[1]]()).replace('{keyId}', fa.key.id);
  if (path.includes('{deviceId}')) return path.replace('{deviceId}', fa.device.id);
  return null;
}

async function snapshot(token) {
  const out = {};
  for (const res of Object.keys(idFor)) {
    const r = await argus.req('GET', `/api/v1/${res}?limit=500`, { token });
    assert.equal(r.status, 200);
    out[res] = r.json.data;
  }
  out.keys = (await argus.req('GET', `/api/v1/devices/${fa.device.id}/api-keys`, { token })).json.data;
  out.org = (await argus.req('GET', '/api/v1/organization', { token })).json;
  out.dlq = (await argus.req('GET', '/api/v1/dlq?limit=500', { token })).json.data;
  return out;
}

test(`[${STORE_KIND}] every endpoint with an id answers 404 to another organisation`, async () => {
  const before = await snapshot(A.token);
  const routes = (await runCli(['routes'])).stdout.trim().split('\n');
  const withId = routes.filter((r) => r.includes('{'));
  assert.ok(withId.length >= 37, `expected every route with an id, got ${withId.length}`);
  const bodies = {
    PATCH: { name: 'stolen', title: 'stolen', status: 'inactive' },
    POST: { name: 'stolen' },
  };
  for (const route of withId) {
    const [method, path] = route.split(' ');
    const url = concrete(path);
    assert.ok(url, `no fixture for ${route}`);
    const r = await argus.req(method, url, { token: B.token, body: bodies[method] });
    assert.ok(isProblem(r, 404), `${route} as B: ${r.status} ${r.text}`);
    for (const id of [fa.device.id, fa.asset.id, fa.user.id]) {
      assert.ok(!r.text.includes(id) || r.json.detail.includes('no '), `${route} leaks nothing`);
    }
  }
  const after = await snapshot(A.token);
  assert.deepEqual(after, before, "A's data is unchanged");
});

test(`[${STORE_KIND}] lists, filters, audit and references never reach another organisation`, async () => {
  const aIds = Object.values(fa).filter((v) => v && v.id).map((v) => v.id);
  const routes = (await runCli(['routes'])).stdout.trim().split('\n')
    .filter((r) => r.startsWith('GET /api/') && !r.includes('{') && r !== 'GET /api/v1/auth/device');
  for (const route of routes) {
    const path = route.split(' ')[1];
    const r = await argus.req('GET', path, { token: B.token });
    assert.ok(r.status === 200, `${route}: ${r.status}`);
    for (const id of aIds) assert.ok(!r.text.includes(id), `${route} shows A's ${id}`);
  }
  const filters = [
    `/api/v1/devices?deviceTypeId=${fa.deviceType.id}`,
    `/api/v1/devices?parentDeviceId=${fa.gateway.id}`,
    `/api/v1/assets?parentId=${fa.site.id}`,
    `/api/v1/assets?assetTypeId=${fa.assetType.id}`,
    `/api/v1/activities?assetId=${fa.asset.id}`,
    `/api/v1/audit?entityId=${fa.device.id}`,
    `/api/v1/audit?entityType=device`,
    `/api/v1/dlq?deviceId=${fa.dlq.deviceId}`,
  ];
  for (const f of filters) {
    const r = await argus.req('GET', f, { token: B.token });
    assert.equal(r.status, 200, f);
    assert.equal(r.json.pagination.total, 0, `${f} as B`);
  }
  const refs = [
    ['/api/v1/devices', { name: 'x', deviceTypeId: fa.deviceType.id }, 'deviceTypeId'],
    ['/api/v1/assets', { name: 'x', assetTypeId: fa.assetType.id }, 'assetTypeId'],
    ['/api/v1/activities', { title: 'x', category: 'person_to_person', assetId: fa.asset.id }, 'assetId'],
    ['/api/v1/persons', { name: 'x', userId: fa.user.id }, 'userId'],
  ];
  for (const [path, body, field] of refs) {
    const r = await argus.req('POST', path, { token: B.token, body });
    assert.ok(isProblem(r, 400), `${path} referencing A's row`);
    assert.equal(r.json.errors[0].field, field);
    const missing = await argus.req('POST', path, { token: B.token, body: { ...body, [field]: '00000000-0000-7000-8000-000000000001' } });
    assert.equal(missing.json.detail, r.json.detail, 'another organisation\'s row looks exactly like a missing one');
  }
});

test(`[${STORE_KIND}] a device key of A works for A's device only`, async () => {
  const who = await argus.req('GET', '/api/v1/auth/device', { apiKey: fa.key.key });
  assert.equal(who.status, 200);
  assert.equal(who.json.id, fa.device.id);
  assert.equal(who.json.organizationId, A.id);
  const asUser = await argus.req('GET', '/api/v1/devices', { token: fa.key.key });
  assert.ok(isProblem(asUser, 401), 'a device key is not a user token');
});
