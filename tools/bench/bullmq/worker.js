// One BullMQ worker process: serves the stages named in argv, each job adds
// the next stage's job (how BullMQ users chain steps), the last one just ends.
// Usage (from bench.js): node worker.js PORT PREFIX STAGES CONCURRENCY, e.g. "0,2,4".
'use strict';
const { Queue, Worker } = require('bullmq');

const [port, prefix, stageList, concurrency] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(port) };
const kStages = 5;
const stages = stageList.split(',').map(Number);
const next = {};
const workers = [];
for (const stage of stages) {
  if (stage + 1 < kStages) next[stage] = new Queue(`s${stage + 1}`, { connection, prefix });
  workers.push(new Worker(`s${stage}`, async (job) => {
    if (stage + 1 < kStages) {
      await next[stage].add('step', job.data, {
        jobId: `${job.data.chain}-s${stage + 1}`, removeOnComplete: true, removeOnFail: true,
      });
    }
    return 0;
  }, { connection, prefix, concurrency: Number(concurrency) }));
}
Promise.all(workers.map((w) => w.waitUntilReady())).then(() => process.send({ ready: true }));
process.on('message', async (message) => {
  if (message.stop) {
    const usage = process.cpuUsage();
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(Object.values(next).map((q) => q.close()));
    process.send({ cpuMs: (usage.user + usage.system) / 1000 });
    process.exit(0);
  }
});
