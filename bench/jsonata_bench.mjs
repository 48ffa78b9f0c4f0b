// jsonata-js side of bench/jsonata.sh: the same expressions and input as
// jsonata_bench.c, each compiled once and evaluated repeatedly; prints
// "evals_per_second<TAB>expression", the median of RUNS runs.
// usage: node jsonata_bench.mjs EXPRS_FILE INPUT_FILE [SECONDS] [RUNS]
import { readFileSync } from 'node:fs';
import jsonata from 'jsonata';

const [exprsFile, inputFile, secondsArg, runsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 0.5);
const runs = Number(runsArg ?? 5);
const input = JSON.parse(readFileSync(inputFile, 'utf8'));
const exprs = readFileSync(exprsFile, 'utf8').split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));

async function runOnce(compiled) {
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let now;
  do {
    for (let i = 0; i < 64; i++) await compiled.evaluate(input);
    n += 64;
    now = process.hrtime.bigint();
  } while (now < limit);
  return n / (Number(now - start) / 1e9);
}

for (const expr of exprs) {
  const compiled = jsonata(expr);
  // warm up the JIT before measuring
  await runOnce(compiled);
  const rates = [];
  for (let r = 0; r < runs; r++) rates.push(await runOnce(compiled));
  rates.sort((a, b) => a - b);
  console.log(`${Math.round(rates[Math.floor(runs / 2)])}\t${expr}`);
}
