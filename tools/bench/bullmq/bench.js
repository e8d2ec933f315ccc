// BullMQ's equivalent of Conveyor's no-op 5-step chain (issue 13's yardstick):
// five queues, a worker per queue whose job adds the next stage's job, the
// workers in two processes, N chains with C in flight. Prints, per run and as
// medians: chains/s, chain latency p50/p99 (add of step 1 → completion of step
// 5, seen through QueueEvents), and CPU ms per chain of the workers, this
// driver and Redis. Run it through run.sh, which starts its own redis-server.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');
const path = require('path');
const { Queue, QueueEvents } = require('bullmq');

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const port = Number(flag('redis-port'));
const redisPid = flag('redis-pid', '');
const chains = Number(flag('chains', '2000'));
const concurrency = Number(flag('concurrency', '64'));
const warmup = Number(flag('warmup', '200'));
const runs = Number(flag('runs', '3'));
const connection = { host: '127.0.0.1', port };
const prefix = `bench${process.pid}`;

function cpuMsOfPid(pid) {
  if (!pid) return 0;
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 1000 / 100;  // utime+stime, USER_HZ 100
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

async function main() {
  const first = new Queue('s0', { connection, prefix });
  const events = new QueueEvents('s4', { connection, prefix });
  await events.waitUntilReady();
  const waiting = new Map();
  events.on('completed', ({ jobId }) => {
    const done = waiting.get(jobId);
    if (done) { waiting.delete(jobId); done(); }
  });
  const workerProcs = ['0,2,4', '1,3'].map((stages) =>
    fork(path.join(__dirname, 'worker.js'), [port, prefix, stages, String(Math.max(concurrency, 1))]));
  await Promise.all(workerProcs.map((p) => new Promise((r) => p.once('message', r))));

  let serial = 0;
  const runChain = () => new Promise((resolve) => {
    const chain = `c${serial++}`;
    const start = process.hrtime.bigint();
    waiting.set(`${chain}-s4`, () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
    first.add('step', { chain }, { jobId: `${chain}-s0`, removeOnComplete: true, removeOnFail: true });
  });
  async function drive(count) {
    const latencies = [];
    let started = 0;
    const lane = async () => {
      while (started < count) { started++; latencies.push(await runChain()); }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
    return latencies;
  }

  const results = [];
  for (let run = 1; run <= runs; run++) {
    await drive(warmup);
    const cpu0 = process.cpuUsage();
    const redis0 = cpuMsOfPid(redisPid);
    const t0 = process.hrtime.bigint();
    const latencies = await drive(chains);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const result = {
      run, chainsPerSecond: chains / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99),
      driverCpuMsPerChain: (cpu.user + cpu.system) / 1000 / chains,
      redisCpuMsPerChain: (cpuMsOfPid(redisPid) - redis0) / chains,
    };
    results.push(result);
    console.log(`run ${run}: ${result.chainsPerSecond.toFixed(1)} chains/s  p50 ${result.p50.toFixed(2)} ms  ` +
      `p99 ${result.p99.toFixed(2)} ms  driver CPU ${result.driverCpuMsPerChain.toFixed(3)} ms/chain  ` +
      `redis CPU ${result.redisCpuMsPerChain.toFixed(3)} ms/chain`);
  }
  const totalChains = runs * (chains + warmup);
  const workerCpu = await Promise.all(workerProcs.map((p) => new Promise((r) => {
    p.once('message', (m) => r(m.cpuMs)); p.send({ stop: true });
  })));
  console.log(`median of ${runs}: ${median(results.map((r) => r.chainsPerSecond)).toFixed(1)} chains/s  ` +
    `p50 ${median(results.map((r) => r.p50)).toFixed(2)} ms  p99 ${median(results.map((r) => r.p99)).toFixed(2)} ms  ` +
    `workers CPU ${(workerCpu.reduce((a, b) => a + b, 0) / totalChains).toFixed(3)} ms/chain (whole session)  ` +
    `redis CPU ${median(results.map((r) => r.redisCpuMsPerChain)).toFixed(3)} ms/chain  (concurrency ${concurrency}, ${chains} chains)`);
  await events.close();
  await first.close();
}
main().then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
