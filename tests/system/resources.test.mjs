// The domain resources: create, read, update, soft delete, list with
// pagination, sorting, filters and search, hierarchies, audit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, STORE_KIND } from './lib/harness.mjs';

let argus, token, ids = {};

before(async () => {
  argus = await startArgus();
  ({ token } = await argus.org('Resources Inc'));
});
after(async () => { await argus.close(); });

const call = (method, path, body) => argus.req(method, path, { token, body });
const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test(`[${STORE_KIND}] create, get, patch and soft-delete a device`, async () => {
  const dt = await call('POST', '/api/v1/device-types', { name: 'Sensor', processingMode: 'endpoint', manufacturer: 'ACME' });
  assert.equal(dt.status, 201);
  ids.dt = dt.json.id;
  const c = await call('POST', '/api/v1/devices', {
    name: 'Dev-1', deviceTypeId: dt.json.id, networkInfo: { ip: '10.0.0.5' },
    location: { lat: 10, lng: 20, alt: 3 }, attributes: { a: 1 }, serialNumber: 'SN1',
  });
  assert.equal(c.status, 201);
  assert.match(c.json.id, UUIDV7);
  assert.match(c.json.createdAt, ISO);
  assert.equal(c.headers.get('location'), `/api/v1/devices/${c.json.id}`);
  assert.equal(c.json.status, 'offline', 'default status');
  assert.equal(c.json.deviceRole, 'endpoint', 'default role');
  assert.equal(c.json.lastSeenAt, null);
  assert.deepEqual(c.json.location, { lat: 10, lng: 20, alt: 3 });
  assert.deepEqual(c.json.networkInfo, { ip: '10.0.0.5' });

  const g = await call('GET', `/api/v1/devices/${c.json.id}`);
  assert.equal(g.status, 200);
  assert.deepEqual(g.json, c.json);
  const upper = await call('GET', `/api/v1/devices/${c.json.id.toUpperCase()}`);
  assert.equal(upper.status, 200, 'ids are case-insensitive');

  const p = await call('PATCH', `/api/v1/devices/${c.json.id}`, { status: 'maintenance', firmwareVersion: '2.0', location: null });
  assert.equal(p.status, 200);
  assert.equal(p.json.status, 'maintenance');
  assert.equal(p.json.firmwareVersion, '2.0');
  assert.equal(p.json.location, null);
  assert.equal(p.json.name, 'Dev-1', 'fields not given are kept');
  assert.ok(p.json.updatedAt >= c.json.updatedAt);

  const d = await call('DELETE', `/api/v1/devices/${c.json.id}`);
  assert.equal(d.status, 204);
  assert.ok(isProblem(await call('GET', `/api/v1/devices/${c.json.id}`), 404));
  assert.ok(isProblem(await call('PATCH', `/api/v1/devices/${c.json.id}`, { name: 'x' }), 404));
  assert.ok(isProblem(await call('DELETE', `/api/v1/devices/${c.json.id}`), 404));

  const audit = await call('GET', `/api/v1/audit?entityType=device&entityId=${c.json.id}`);
  assert.equal(audit.status, 200);
  assert.deepEqual(audit.json.data.map((e) => e.action), ['delete', 'update', 'create']);
  const upd = audit.json.data[1];
  assert.deepEqual(upd.changes.status, { from: 'offline', to: 'maintenance' });
  assert.equal(upd.actor.type, 'user');
  assert.match(upd.at, ISO);
});

test(`[${STORE_KIND}] lists paginate, sort, filter and search against a model`, async () => {
  const model = [];
  const statuses = ['online', 'offline', 'maintenance'];
  for (let i = 0; i < 23; i++) {
    const name = `Node ${String(i).padStart(2, '0')}${i % 5 === 0 ? ' Boiler' : ''}`;
    const r = await call('POST', '/api/v1/devices', { name, deviceTypeId: ids.dt, status: statuses[i % 3] });
    assert.equal(r.status, 201);
    model.push(r.json);
  }
  const all = [];
  for (let offset = 0; ; offset += 10) {
    const r = await call('GET', `/api/v1/devices?limit=10&offset=${offset}&sort=name`);
    assert.equal(r.status, 200);
    assert.equal(r.json.pagination.total, 23);
    assert.equal(r.json.pagination.limit, 10);
    all.push(...r.json.data);
    if (r.json.data.length < 10) break;
  }
  assert.deepEqual(all.map((d) => d.name), model.map((d) => d.name).sort());

  const desc = await call('GET', '/api/v1/devices?sort=-name&limit=3');
  assert.deepEqual(desc.json.data.map((d) => d.name), model.map((d) => d.name).sort().reverse().slice(0, 3));

  const online = await call('GET', '/api/v1/devices?status=online&limit=500');
  assert.deepEqual(online.json.data.map((d) => d.id).sort(), model.filter((d) => d.status === 'online').map((d) => d.id).sort());
  assert.equal(online.json.pagination.total, model.filter((d) => d.status === 'online').length);

  const boiler = await call('GET', '/api/v1/devices?search=bOiLeR');
  assert.deepEqual(boiler.json.data.map((d) => d.name).sort(), model.filter((d) => /Boiler/.test(d.name)).map((d) => d.name).sort());
  const literal = await call('GET', '/api/v1/devices?search=%25');
  assert.equal(literal.json.pagination.total, 0, 'LIKE wildcards are matched literally');

  const both = await call('GET', `/api/v1/devices?status=offline&search=boiler&deviceTypeId=${ids.dt}`);
  assert.deepEqual(both.json.data.map((d) => d.id).sort(), model.filter((d) => d.status === 'offline' && /Boiler/.test(d.name)).map((d) => d.id).sort());
  const byCreated = await call('GET', '/api/v1/devices?limit=500');
  assert.deepEqual(byCreated.json.data.map((d) => d.id), model.map((d) => d.id), 'default order is creation order');
});

test(`[${STORE_KIND}] every resource supports the full lifecycle`, async () => {
  const at = await call('POST', '/api/v1/asset-types', { name: 'Generic' });
  const cases = [
    ['/api/v1/device-types', { name: 'DT-x', processingMode: 'rtu_multiport' }, { description: 'ports' }],
    ['/api/v1/asset-types', { name: 'AT-x', color: '#fff' }, { icon: 'cog' }],
    ['/api/v1/assets', { name: 'Asset-x', assetTypeId: at.json.id }, { status: 'maintenance' }],
    ['/api/v1/spaces', { name: 'Room-x', spaceType: 'room' }, { description: 'cold' }],
    ['/api/v1/persons', { name: 'Person-x', email: 'X@Example.Test' }, { title: 'Lead' }],
    ['/api/v1/activity-types', { name: 'AY-x', category: 'system_to_person' }, { description: 'auto' }],
    ['/api/v1/activities', { title: 'Do x', category: 'system_to_person', dueAt: '2026-12-01T08:00:00+01:00' }, { status: 'in_progress', priority: 'critical' }],
    ['/api/v1/users', { email: 'u-x@example.test', name: 'U', role: 'viewer', password: 'long password' }, { role: 'technician' }],
  ];
  for (const [path, body, patch] of cases) {
    const c = await call('POST', path, body);
    assert.equal(c.status, 201, `${path}: ${c.text}`);
    const g = await call('GET', `${path}/${c.json.id}`);
    assert.equal(g.status, 200, path);
    const p = await call('PATCH', `${path}/${c.json.id}`, patch);
    assert.equal(p.status, 200, `${path}: ${p.text}`);
    for (const [k, v] of Object.entries(patch)) assert.equal(p.json[k], v, `${path}.${k}`);
    const l = await call('GET', `${path}?limit=500`);
    assert.ok(l.json.data.some((x) => x.id === c.json.id), `${path} lists the new row`);
    const d = await call('DELETE', `${path}/${c.json.id}`);
    assert.equal(d.status, 204, `${path}: ${d.text}`);
    const l2 = await call('GET', `${path}?limit=500`);
    assert.ok(!l2.json.data.some((x) => x.id === c.json.id), `${path} hides the deleted row`);
  }
  const person = await call('POST', '/api/v1/persons', { name: 'Case', email: 'MiXeD@Example.Test' });
  assert.equal(person.json.email, 'mixed@example.test', 'emails are stored lower-case');
  const act = await call('POST', '/api/v1/activities', { title: 'TZ', category: 'person_to_person', dueAt: '2026-12-01T08:00:00+01:00' });
  assert.equal(act.json.dueAt, '2026-12-01T07:00:00.000Z', 'times are normalised to UTC');
  assert.equal(act.json.status, 'open');
  assert.equal(act.json.priority, 'medium');
  assert.equal(act.json.source, 'manual');
});

test(`[${STORE_KIND}] asset hierarchy: children, ancestors, no cycles`, async () => {
  const at = await call('POST', '/api/v1/asset-types', { name: 'Tree type' });
  const mk = async (name, parentId) => (await call('POST', '/api/v1/assets', { name, assetTypeId: at.json.id, parentId })).json;
  const root = await mk('Root');
  const mid = await mk('Mid', root.id);
  const leafA = await mk('Leaf A', mid.id);
  const leafB = await mk('Leaf B', mid.id);
  const ch = await call('GET', `/api/v1/assets/${mid.id}/children`);
  assert.deepEqual(ch.json.data.map((a) => a.name), ['Leaf A', 'Leaf B']);
  const an = await call('GET', `/api/v1/assets/${leafA.id}/ancestors`);
  assert.deepEqual(an.json.data.map((a) => a.name), ['Root', 'Mid']);
  assert.deepEqual((await call('GET', `/api/v1/assets/${root.id}/ancestors`)).json.data, []);
  const byParent = await call('GET', `/api/v1/assets?parentId=${mid.id}`);
  assert.equal(byParent.json.pagination.total, 2);
  const roots = await call('GET', `/api/v1/assets?parentId=null&assetTypeId=${at.json.id}`);
  assert.deepEqual(roots.json.data.map((a) => a.name), ['Root']);

  const cycle = await call('PATCH', `/api/v1/assets/${root.id}`, { parentId: leafB.id });
  assert.ok(isProblem(cycle, 400));
  assert.match(cycle.json.detail, /own ancestor/);
  const self = await call('PATCH', `/api/v1/assets/${root.id}`, { parentId: root.id });
  assert.ok(isProblem(self, 400));
  const busy = await call('DELETE', `/api/v1/assets/${mid.id}`);
  assert.ok(isProblem(busy, 409), 'an asset with children cannot be deleted');
  const move = await call('PATCH', `/api/v1/assets/${leafB.id}`, { parentId: null });
  assert.equal(move.status, 200);
  assert.equal(move.json.parentId, null);
});

test(`[${STORE_KIND}] asset types are at most three levels deep`, async () => {
  const mk = (name, parentId) => call('POST', '/api/v1/asset-types', { name, parentId });
  const l1 = (await mk('L1')).json;
  const l2 = (await mk('L2', l1.id)).json;
  const l3 = await mk('L3', l2.id);
  assert.equal(l3.status, 201);
  const l4 = await mk('L4', l3.json.id);
  assert.ok(isProblem(l4, 400));
  assert.match(l4.json.detail, /at most 3 levels/);
  const other = (await mk('Other root')).json;
  const otherChild = (await mk('Other child', other.id)).json;
  const tooDeep = await call('PATCH', `/api/v1/asset-types/${other.id}`, { parentId: l2.id });
  assert.ok(isProblem(tooDeep, 400), 'moving a subtree under a deep node counts its height');
  const ok = await call('PATCH', `/api/v1/asset-types/${otherChild.id}`, { parentId: l2.id });
  assert.equal(ok.status, 200);
  const kids = await call('GET', `/api/v1/asset-types/${l2.id}/children`);
  assert.deepEqual(kids.json.data.map((t) => t.name).sort(), ['L3', 'Other child']);
  const inUse = await call('DELETE', `/api/v1/asset-types/${l1.id}`);
  assert.ok(isProblem(inUse, 409));
});

test(`[${STORE_KIND}] unique names and references within the organisation`, async () => {
  const a = await call('POST', '/api/v1/device-types', { name: 'Unique-1' });
  assert.equal(a.status, 201);
  const dup = await call('POST', '/api/v1/device-types', { name: 'Unique-1' });
  assert.ok(isProblem(dup, 409));
  await call('DELETE', `/api/v1/device-types/${a.json.id}`);
  const again = await call('POST', '/api/v1/device-types', { name: 'Unique-1' });
  assert.equal(again.status, 201, 'a deleted name can be used again');
  const dev = await call('POST', '/api/v1/devices', { name: 'D', deviceTypeId: again.json.id });
  const used = await call('DELETE', `/api/v1/device-types/${again.json.id}`);
  assert.ok(isProblem(used, 409), 'a device type in use cannot be deleted');
  assert.match(used.json.detail, /1 devices/);
  const missing = await call('POST', '/api/v1/devices', { name: 'D2', deviceTypeId: '00000000-0000-7000-8000-000000000000' });
  assert.ok(isProblem(missing, 400));
  assert.equal(missing.json.errors[0].field, 'deviceTypeId');
  const orphan = await call('POST', '/api/v1/devices', { name: 'D3', deviceTypeId: again.json.id, logicalIdentifier: 'x' });
  assert.ok(isProblem(orphan, 400), 'a logical identifier needs a parent gateway');
  const kids = await call('GET', `/api/v1/devices/${dev.json.id}/children`);
  assert.deepEqual(kids.json.data, []);
});

test(`[${STORE_KIND}] roles: viewers read, technicians work activities, operators manage, admins manage users`, async () => {
  const viewer = await argus.user(token, 'viewer');
  const tech = await argus.user(token, 'technician');
  const op = await argus.user(token, 'operator');
  const as = (u, m, p, b) => argus.req(m, p, { token: u.token, body: b });

  assert.equal((await as(viewer, 'GET', '/api/v1/devices')).status, 200);
  assert.ok(isProblem(await as(viewer, 'POST', '/api/v1/devices', { name: 'x', deviceTypeId: ids.dt }), 403));
  assert.ok(isProblem(await as(viewer, 'POST', '/api/v1/activities', { title: 't', category: 'person_to_person' }), 403));
  assert.equal((await as(tech, 'POST', '/api/v1/activities', { title: 't', category: 'person_to_person' })).status, 201);
  assert.ok(isProblem(await as(tech, 'POST', '/api/v1/spaces', { name: 's' }), 403));
  assert.equal((await as(op, 'POST', '/api/v1/spaces', { name: 's' })).status, 201);
  assert.ok(isProblem(await as(op, 'POST', '/api/v1/users', { email: 'z@z.test', name: 'z', role: 'admin', password: 'long password' }), 403));
  assert.ok(isProblem(await as(viewer, 'GET', '/api/v1/users'), 403));
  assert.ok(isProblem(await as(op, 'PATCH', '/api/v1/organization', { name: 'x' }), 403));

  const me = await call('GET', '/api/v1/auth/me');
  const demote = await call('PATCH', `/api/v1/users/${me.json.id}`, { role: 'viewer' });
  assert.ok(isProblem(demote, 409), 'admins cannot demote themselves');
  const promote = await call('PATCH', `/api/v1/users/${viewer.id}`, { role: 'operator' });
  assert.equal(promote.status, 200);
  assert.equal((await as(viewer, 'POST', '/api/v1/spaces', { name: 's2' })).status, 201, 'a role change applies at once');
  const pw = await call('PATCH', `/api/v1/users/${tech.id}`, { password: 'a new long password' });
  assert.equal(pw.status, 200);
  const audit = await call('GET', `/api/v1/audit?entityType=user&entityId=${tech.id}`);
  assert.equal(audit.json.data[0].changes.password, '(changed)');
  assert.ok(!JSON.stringify(audit.json).includes('argon2'), 'hashes never reach the audit log');
});
