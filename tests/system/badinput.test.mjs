// Bad input of every kind gets a clear problem+json 4xx and writes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, STORE_KIND } from './lib/harness.mjs';
import { populate } from './lib/fixtures.mjs';

let argus, org, fx;

before(async () => {
  argus = await startArgus({ extraArgs: ['--max-body', '65536'] });
  org = await argus.org('Bad Input Co');
  fx = await populate(argus, org.token);
});
after(async () => { await argus.close(); });

const call = (m, p, b, headers) => argus.req(m, p, { token: org.token, body: b, headers });

/** Everything an organisation can see, to prove nothing was written. */
async function state() {
  const parts = [];
  for (const p of ['/api/v1/devices', '/api/v1/device-types', '/api/v1/assets', '/api/v1/asset-types', '/api/v1/spaces',
    '/api/v1/persons', '/api/v1/activity-types', '/api/v1/activities', '/api/v1/users', '/api/v1/audit', '/api/v1/organization']) {
    const r = await call('GET', `${p}${p.endsWith('organization') ? '' : '?limit=500'}`);
    assert.equal(r.status, 200, p);
    parts.push(r.json);
  }
  return parts;
}

test(`[${STORE_KIND}] malformed, mistyped, unknown and oversized bodies`, async () => {
  const before = await state();
  const cases = [
    ['POST', '/api/v1/devices', '{"name": "x", ', 400, 'malformed-json'],
    ['POST', '/api/v1/devices', '', 400, 'malformed-json'],
    ['POST', '/api/v1/devices', '[1,2]', 400, 'malformed-json'],
    ['POST', '/api/v1/devices', '"just a string"', 400, 'malformed-json'],
    ['POST', '/api/v1/devices', '{"name":"a","name":"b","deviceTypeId":"' + fx.deviceType.id + '"}', 400, 'malformed-json'],
    ['POST', '/api/v1/devices', { name: 42, deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: 'not-a-uuid' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, status: 'exploded' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, colour: 'red' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, id: '00000000-0000-7000-8000-000000000000' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, lastSeenAt: '2026-01-01T00:00:00Z' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: '', deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x'.repeat(201), deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'a\u0000b', deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, location: { lat: 91, lng: 0 } }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, location: { lat: 1, lng: 2, extra: 1 } }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, attributes: [1] }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: 'x', deviceTypeId: fx.deviceType.id, attributes: { big: 'y'.repeat(70000) } }, 413, 'payload-too-large'],
    ['POST', '/api/v1/activities', { title: 'x', category: 'person_to_person', dueAt: 'tomorrow' }, 400, 'validation'],
    ['POST', '/api/v1/activities', { title: 'x', category: 'person_to_person', dueAt: '2026-02-30T00:00:00Z' }, 400, 'validation'],
    ['POST', '/api/v1/persons', { name: 'x', email: 'not an email' }, 400, 'validation'],
    ['POST', '/api/v1/users', { email: 'a@b.test', name: 'x', role: 'superuser', password: 'long password' }, 400, 'validation'],
    ['POST', '/api/v1/users', { email: 'a@b.test', name: 'x', role: 'viewer', password: 'short' }, 400, 'validation'],
    ['POST', '/api/v1/devices', { name: null, deviceTypeId: fx.deviceType.id }, 400, 'validation'],
    ['PATCH', `/api/v1/devices/${fx.device.id}`, { deviceTypeId: null }, 400, 'validation'],
    ['PATCH', `/api/v1/devices/${fx.device.id}`, {}, 400, 'validation'],
    ['PATCH', `/api/v1/devices/${fx.device.id}`, { name: ['x'] }, 400, 'validation'],
    ['PATCH', `/api/v1/assets/${fx.asset.id}`, { healthScore: 50 }, 400, 'validation'],
    ['POST', '/api/v1/auth/login', { email: 'x@y.test' }, 400, 'validation'],
    ['POST', '/api/v1/auth/login', { email: 'x@y.test', password: 'x', remember: true }, 400, 'validation'],
    ['POST', `/api/v1/devices/${fx.device.id}/api-keys`, { name: 7 }, 400, 'validation'],
    ['PATCH', '/api/v1/organization', { name: '' }, 400, 'validation'],
  ];
  for (const [method, path, body, status, slug] of cases) {
    const r = await call(method, path, body);
    assert.ok(isProblem(r, status), `${method} ${path} ${JSON.stringify(body).slice(0, 80)} → ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(r.json.type, `urn:argus:problem:${slug}`, `${method} ${path} ${JSON.stringify(body).slice(0, 60)}`);
  }
  const many = await call('POST', '/api/v1/devices', { name: 5, deviceTypeId: 'x', status: 'y', bogus: 1 });
  assert.deepEqual(many.json.errors.map((e) => e.field).sort(), ['bogus', 'deviceTypeId', 'name', 'status'], 'every problem is listed');
  const wrongType = await call('POST', '/api/v1/devices', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.ok(isProblem(wrongType, 415));
  const after = await state();
  assert.deepEqual(after, before, 'nothing was written');
});

test(`[${STORE_KIND}] bodies over the limit are refused, streamed or not`, async () => {
  const big = JSON.stringify({ name: 'x', description: 'y'.repeat(100000) });
  const r = await call('POST', '/api/v1/devices', big);
  assert.ok(isProblem(r, 413));
  // Chunked transfer: no Content-Length, the limit still holds.
  const stream = new ReadableStream({
    start(c) { for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode('x'.repeat(10000))); c.close(); },
  });
  const res = await fetch(argus.base + '/api/v1/devices', {
    method: 'POST', body: stream, duplex: 'half',
    headers: { authorization: `Bearer ${org.token}`, 'content-type': 'application/json' },
  });
  assert.equal(res.status, 413);
  assert.equal((await call('GET', '/healthz')).status, 200, 'the server is fine after');
});

test(`[${STORE_KIND}] bad ids, pagination, sorting and query parameters`, async () => {
  const cases = [
    ['GET', '/api/v1/devices/123'],
    ['GET', '/api/v1/devices/not-a-uuid'],
    ['GET', `/api/v1/devices/${fx.device.id}x`],
    ['DELETE', '/api/v1/assets/%27%3B%20DROP%20TABLE%20assets'],
    ['GET', '/api/v1/devices?limit=0'],
    ['GET', '/api/v1/devices?limit=501'],
    ['GET', '/api/v1/devices?limit=ten'],
    ['GET', '/api/v1/devices?limit=-5'],
    ['GET', '/api/v1/devices?offset=-1'],
    ['GET', '/api/v1/devices?offset=1e3'],
    ['GET', '/api/v1/devices?sort=password'],
    ['GET', '/api/v1/devices?sort=-nonexistent'],
    ['GET', '/api/v1/devices?status=exploded'],
    ['GET', '/api/v1/devices?deviceTypeId=abc'],
    ['GET', '/api/v1/devices?colour=red'],
    ['GET', '/api/v1/devices?limit=5&limit=6'],
    ['GET', `/api/v1/devices?search=${'a'.repeat(300)}`],
    ['GET', `/api/v1/devices/${fx.device.id}?expand=all`],
    ['GET', `/api/v1/assets/${fx.asset.id}/ancestors?depth=2`],
    ['GET', '/api/v1/users?role=superuser'],
  ];
  for (const [method, path] of cases) {
    const r = await call(method, path);
    assert.ok(isProblem(r, 400), `${method} ${path} → ${r.status} ${r.text.slice(0, 200)}`);
  }
  const ok = await call('GET', '/api/v1/devices?limit=500&offset=1000000');
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json.data, []);
  const missing = await call('GET', '/api/v1/devices/01234567-89ab-7def-8123-456789abcdef');
  assert.ok(isProblem(missing, 404));
  const tables = await call('GET', '/api/v1/assets?limit=500');
  assert.ok(tables.json.data.length >= 2, 'the assets table is still there');
});

test(`[${STORE_KIND}] unauthenticated writes are refused before anything else`, async () => {
  const r = await argus.req('POST', '/api/v1/devices', { body: '{garbage' });
  assert.ok(isProblem(r, 401));
  assert.match(r.headers.get('www-authenticate'), /Bearer/);
});
