// `argus serve --threads 1` (the default on a one-core machine) under 130
// busy connections: every ingest answered at once. With one thread
// libmicrohttpd 0.9.75 runs its single-daemon epoll loop, which now and
// then left connections resumed after a deferred answer unserved until the
// connection timeout (60 s): by hand, 2 of 5 fresh `serve --demo` runs
// under `argus sim --devices 200 --connections 130`; none of 8 with the fix,
// a pool of at least two threads. This test did not reproduce the stall
// in the harness's set-up (4 rounds passed on the unfixed build), so it
// guards the behaviour rather than proving the cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, KIND } from './lib/harness.mjs';
import { runSim } from './lib/load.mjs';

test(`[${KIND}] --threads 1 serves 130 busy connections without a stall`, { timeout: 180000 }, async () => {
  for (let round = 0; round < 2; round++) {
    const argus = await startArgus({ extraArgs: ['--threads', '1'] });
    try {
      const org = await argus.org(`Threads Co ${round}`);
      const r = await runSim(['--url', argus.base, '--email', org.email, '--password', org.password,
        '--devices', '200', '--connections', '130', '--duration', '2'], 20000);
      assert.ok(!r.killed, `round ${round}: the simulator was still waiting for answers 20 s into a 2 s run`);
      assert.equal(r.code, 0, r.err);
      const out = JSON.parse(r.out);
      assert.equal(out.status['202'], out.requests, r.out);
      assert.ok(out.latencyMs.max < 5000, `round ${round}: a request waited ${out.latencyMs.max} ms`);
    } finally {
      await argus.close();
    }
  }
});
