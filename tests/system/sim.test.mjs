// argus sim, the load generator the benchmarks and crash tests rely on: it
// keeps a set rate, every message it reports acknowledged is stored (its 40
// devices spread over all the slices in which the embedded writer flushes
// points, and no pending range is left once they are read), and a
// refused request (here, a body over the server's limit, answered before
// the simulator has finished sending it) is counted and fails the run
// instead of hanging it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startArgus, storeSql, KIND } from './lib/harness.mjs';
import { expectStored, runSim } from './lib/load.mjs';

test(`[${KIND}] argus sim keeps its rate, and what it reports acknowledged is stored`, { timeout: 60000 }, async () => {
  const argus = await startArgus();
  try {
    const org = await argus.org('Sim Rate Co');
    const record = join(argus.dir, 'acked.txt');
    // 300 messages/s over 2 s from 6 connections on 2 threads: 600 due.
    const r = await runSim(['--url', argus.base, '--email', org.email, '--password', org.password,
      '--devices', '40', '--connections', '6', '--threads', '2', '--rate', '300',
      '--duration', '2', '--metrics', '3', '--record', record]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.status['202'], out.requests, r.out);
    assert.ok(out.acceptedMessages >= 570 && out.acceptedMessages <= 606,
      `accepted ${out.acceptedMessages} at 300/s for 2 s`);
    const stored = await expectStored(argus, org.token, record);
    assert.equal(stored, out.acceptedMessages);
    assert.equal(storeSql(argus.store, 'SELECT count(*) FROM pipeline_pending'), '0');
  } finally {
    await argus.close();
  }
});

test(`[${KIND}] argus sim counts a refused oversized request and exits non-zero`, { timeout: 60000 }, async () => {
  const argus = await startArgus();
  try {
    const org = await argus.org('Sim Big Co');
    // 200 messages x 1000 metrics: ~3 MB per request, over the 1 MiB limit.
    const r = await runSim(['--url', argus.base, '--email', org.email, '--password', org.password,
      '--devices', '2', '--connections', '2', '--batch', '200', '--metrics', '1000',
      '--duration', '1']);
    assert.equal(r.code, 1, r.err);
    const out = JSON.parse(r.out);
    assert.ok(out.requests >= 2, r.out);
    assert.equal(out.status['4xx'] + out.status.errors, out.requests, r.out);
    assert.ok(out.status['4xx'] >= 1, r.out);
    assert.equal(out.acceptedMessages, 0);
  } finally {
    await argus.close();
  }
});
