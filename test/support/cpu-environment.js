/**
 * Jest's node environment, recording each test file's CPU: the worker process's user + system time
 * (all its threads) from the environment's setup to its teardown, module loading included; not the
 * processes a file starts, nor PostgreSQL's or Redis's. For finding what the suite's CPU goes to (it is
 * CPU-bound on two cores): `npm run test:cpu` runs the whole suite with it and prints the files that
 * took most. Each file appends `path<TAB>cpu ms<TAB>wall ms` to the file `JEST_CPU_REPORT` names.
 */
const fs = require('node:fs');
const { TestEnvironment } = require('jest-environment-node');

class CpuRecordingEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
  }

  async setup() {
    this.cpuAtStart = process.cpuUsage();
    this.startedAt = Date.now();
    await super.setup();
  }

  async teardown() {
    await super.teardown();
    const report = process.env.JEST_CPU_REPORT;
    if (!report) return;
    const used = process.cpuUsage(this.cpuAtStart);
    fs.appendFileSync(report, `${this.testPath}\t${Math.round((used.user + used.system) / 1000)}\t${Date.now() - this.startedAt}\n`);
  }
}

module.exports = CpuRecordingEnvironment;
