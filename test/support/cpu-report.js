/**
 * `npm run test:cpu`: the whole suite under `test/support/cpu-environment.js`, then the test files
 * that took most CPU (their worker's, module loading included), the total, and the median file.
 * Usage: node test/support/cpu-report.js [jest arguments…]
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sob-test-cpu-')), 'cpu.tsv');
const jest = spawnSync(
  process.execPath,
  [require.resolve('jest/bin/jest'), '--testEnvironment', path.join(root, 'test', 'support', 'cpu-environment.js'), ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, JEST_CPU_REPORT: report, NODE_OPTIONS: '--experimental-vm-modules' } },
);
const rows = fs.existsSync(report)
  ? fs.readFileSync(report, 'utf8').trim().split('\n').map((line) => {
      const [file, cpu, wall] = line.split('\t');
      return { file: path.relative(root, file ?? ''), cpu: Number(cpu), wall: Number(wall) };
    })
  : [];
rows.sort((a, b) => b.cpu - a.cpu);
const total = rows.reduce((sum, r) => sum + r.cpu, 0);
console.log(`\nTest files by CPU (their Jest worker's; not the processes they start, nor PostgreSQL's or Redis's): ${rows.length} files, ${(total / 1000).toFixed(0)} s in all, median ${((rows[Math.floor(rows.length / 2)]?.cpu ?? 0) / 1000).toFixed(1)} s`);
for (const r of rows.slice(0, 30)) console.log(`${(r.cpu / 1000).toFixed(1).padStart(6)} s CPU ${(r.wall / 1000).toFixed(1).padStart(6)} s wall  ${r.file}`);
console.log(`(${report})`);
process.exitCode = jest.status ?? 1;
