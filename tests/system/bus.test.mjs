// The distributed pipeline: `argus api` publishes accepted telemetry to the
// bus and `argus worker` processes run the stages. Runs on the bus named by
// ARGUS_TEST_BUS (redis when it is "mem", the embedded default) and the
// store named by ARGUS_TEST_STORE.
//
// - kill -9 of a worker under continuous load, then a restart: every message
//   that got a 202 is stored exactly once (points by device, metric and
//   time; the raw store holds each message once);
// - messages that a stage cannot process go to the DLQ with stage and
//   reason, and everything else still flows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Argus, BIN, BUS_KIND, ROOT, STORE_KIND, busArgs, freePort, freshStore, runCli, startBus, storeSql } from './lib/harness.mjs';
import { expectStored, runSim, sleep, waitAcked } from './lib/load.mjs';

const BUS = BUS_KIND === 'mem' ? 'redis' : BUS_KIND;
const LABEL = `[${STORE_KIND}+${BUS}, api + workers]`;

let dir, store, bus, api;
const workers = new Set();

/** Starts `argus worker`; resolves once it consumes. */
function startWorker(stages = 'all', extra = []) {
  const proc = spawn(BIN, ['worker', '--store', store.url, ...busArgs(bus), '--stages', stages, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const w = { proc, log: '' };
  w.exited = new Promise((res) => proc.on('exit', (code, signal) => { workers.delete(w); res({ code, signal }); }));
  workers.add(w);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`worker did not start:\n${w.log}`)), 30000);
    proc.stderr.on('data', (d) => {
      w.log += d;
      if (/msg="working"/.test(w.log)) { clearTimeout(timer); res(w); }
    });
    w.exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`worker exited with ${code}:\n${w.log}`)); });
  });
}

async function stopWorker(w) {
  w.proc.kill('SIGTERM');
  const st = await w.exited;
  assert.equal(st.code, 0, `worker exit (under ASan: no leak)\n${w.log.split('\n').filter((l) => /Sanitizer|runtime error/.test(l)).join('\n')}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'argus-bus-'));
  store = freshStore(dir);
  bus = await startBus(dir, BUS);
  api = new Argus({ store, dir, bus, command: 'api' });
  await api.start();
});

after(async () => {
  for (const w of [...workers]) await stopWorker(w);
  const st = await api.stop();
  await bus.stop();
  store.drop();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(st.code, 0, 'api exit (under ASan: no leak)');
});

test(`${LABEL} kill -9 of a worker under load loses and duplicates nothing`, { timeout: 180000 }, async () => {
  const org = await api.org('Worker Crash Co');
  const w1 = await startWorker();
  const w2 = await startWorker();
  const record = join(dir, 'acked.txt');
  const sim = runSim(['--url', api.base, '--email', org.email, '--password', org.password,
    '--devices', '20', '--connections', '8', '--batch', '10', '--metrics', '3',
    '--duration', '6', '--rate', '3000', '--record', record]);
  // Kill a worker once messages flow and it has work in hand.
  await waitAcked(record, 100);
  w1.proc.kill('SIGKILL');
  assert.equal((await w1.exited).signal, 'SIGKILL');
  await sleep(500);
  const w3 = await startWorker(); // the restart
  const result = await sim;
  const summary = JSON.parse(result.out);
  assert.equal(summary.status['5xx'], 0, result.out);

  const total = await expectStored(api, org.token, record);
  assert.ok(total > 500, `only ${total} messages were acknowledged`);
  // The raw store holds every message once: a redelivered message keeps its
  // raw id. (Messages the simulator sent when time ran out may be stored
  // without being recorded as acknowledged, hence >=.)
  await sleep(500);
  const orgId = org.id;
  const [rawCount, distinct] = storeSql(store, `SELECT count(*) || ' ' || count(DISTINCT payload) FROM telemetry_raw WHERE organization_id = '${orgId}'`).split(' ').map(Number);
  assert.equal(rawCount, distinct, 'a raw message stored twice');
  assert.ok(rawCount >= total, `raw store has ${rawCount} of ${total} acknowledged messages`);
  assert.equal(Number(storeSql(store, `SELECT count(*) FROM dlq WHERE organization_id = '${orgId}'`)), 0, 'nothing went to the DLQ');
  await stopWorker(w2);
  await stopWorker(w3);
});

test(`${LABEL} what a stage cannot process goes to the DLQ with its reason; the rest flows`, { timeout: 120000 }, async () => {
  const org = await api.org('Stage DLQ Co');
  const call = async (m, p, b) => {
    const r = await api.req(m, p, { token: org.token, body: b });
    assert.ok(r.status < 300, `${m} ${p}: ${r.status} ${r.text}`);
    return r.json;
  };
  const dt = await call('POST', '/api/v1/device-types', { name: 'T' });
  const doomed = await call('POST', '/api/v1/devices', { name: 'doomed', deviceTypeId: dt.id });
  const fine = await call('POST', '/api/v1/devices', { name: 'fine', deviceTypeId: dt.id });
  const dk = (await call('POST', `/api/v1/devices/${doomed.id}/api-keys`, {})).key;
  const fk = (await call('POST', `/api/v1/devices/${fine.id}/api-keys`, {})).key;
  // No worker runs: the messages wait in the bus, durable.
  const T = Date.parse('2026-04-01T00:00:00Z');
  for (let i = 0; i < 5; i++) {
    for (const [d, k] of [[doomed, dk], [fine, fk]]) {
      const r = await api.req('POST', '/api/v1/telemetry/ingest', { apiKey: k, body: { deviceId: d.id, metrics: { v: i }, timestamp: T + i * 1000 } });
      assert.equal(r.status, 202, r.text);
    }
  }
  // The device goes before its messages are processed.
  await call('DELETE', `/api/v1/devices/${doomed.id}`);
  // Stages in two processes: the archive apart from the others.
  const wa = await startWorker('archive');
  const port = await freePort();
  const wb = await startWorker('normalize,device-writer', ['--metrics-port', String(port)]);
  const deadline = Date.now() + 60000;
  let dead;
  for (;;) {
    dead = await api.req('GET', `/api/v1/dlq?deviceId=${doomed.id}`, { token: org.token });
    assert.equal(dead.status, 200, dead.text);
    if (dead.json.pagination.total === 5) break;
    assert.ok(Date.now() < deadline, `DLQ has ${dead.json.pagination.total} of 5 entries`);
    await sleep(100);
  }
  for (const e of dead.json.data) {
    assert.equal(e.stage, 'normalize');
    assert.match(e.reason, /no longer exists/);
  }
  const one = await api.req('GET', `/api/v1/dlq/${dead.json.data[0].id}`, { token: org.token });
  assert.equal(one.json.payload.deviceId, doomed.id, 'the message itself is kept');
  for (;;) {
    const q = await api.req('GET', `/api/v1/telemetry/device/${fine.id}?metricKey=v&startTime=2026-04-01T00:00:00Z&endTime=2026-04-02T00:00:00Z`, { token: org.token });
    if (q.json.data.length === 5) break;
    assert.ok(Date.now() < deadline, `fine device has ${q.json.data.length} of 5 points`);
    await sleep(100);
  }
  // Every accepted message is in the raw store, the dead ones included.
  for (;;) {
    const n = Number(storeSql(store, `SELECT count(*) FROM telemetry_raw WHERE organization_id = '${org.id}'`));
    if (n === 10) break;
    assert.ok(Date.now() < deadline, `raw store has ${n} of 10`);
    await sleep(100);
  }
  const m = await api.metrics();
  assert.equal(m.get('argus_pipeline_messages_total{result="published"}') >= 10, true);
  // The worker's own metrics: what its stages did, on its port.
  const wm = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  assert.match(wm, /^argus_stage_messages_total\{stage="normalize",result="dead"\} 5$/m);
  assert.match(wm, /^argus_stage_messages_total\{stage="device-writer",result="ok"\} 5$/m);
  assert.doesNotMatch(wm, /stage="archive"/, 'only the stages it runs');
  assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/devices`)).status, 404, 'no API on a worker');
  await stopWorker(wa);
  await stopWorker(wb);
});

test(`${LABEL} every metric the alert rules and the dashboard use is exported`, async () => {
  // The API process and a worker together export every family (the
  // dashboard and alerts sum over both kinds of process).
  const port = await freePort();
  const w = await startWorker('all', ['--metrics-port', String(port)]);
  const have = new Set();
  for (const text of [await fetch(`${api.base}/metrics`).then((r) => r.text()),
    await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())]) {
    for (const m of text.matchAll(/^# TYPE (\w+) /gm)) have.add(m[1]);
  }
  const used = new Set();
  for (const f of ['deploy/prometheus/argus-alerts.yml', 'deploy/grafana/argus-overview.json']) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/\b(argus_[a-z0-9_]+)/g)) used.add(m[1].replace(/_(bucket|sum|count)$/, ''));
  }
  used.delete('argus_'); // the job label, not a metric
  const missing = [...used].filter((n) => !have.has(n));
  assert.deepEqual(missing, [], 'metrics named in deploy/ that no process exports');
  assert.ok(used.size >= 12, `only ${used.size} metrics found in deploy/`);
  await stopWorker(w);
});

test(`${LABEL} argus worker refuses bad options with a clear message`, async () => {
  let r = await runCli(['worker', '--store', store.url]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs --bus/);
  r = await runCli(['worker', '--store', store.url, '--bus', bus.url, '--stages', 'archive,shred']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown stage 'shred'/);
  r = await runCli(['serve', '--store', store.url, '--stages', 'archive']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs an external --bus/);
  r = await runCli(['worker', '--store', store.url, '--bus', 'kafka://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open the bus/);
});
