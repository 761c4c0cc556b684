/**
 * A large patient paged at `_count=500` to its end returns every resource once: through a raw
 * `node:http` client that only follows the next link (the server's search snapshot, twice: the first
 * search builds it, the second slices it) and through `fetch` + `JSON.parse`. The throughput of the
 * same passes, on 50,000 resources, is `npm run bench:sandbox` (src/sandbox/README.md, Throughput).
 */
import { Agent } from 'node:http';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { largePatient, largePatientSearchUrl, pageThroughParsed, pageThroughRaw } from '../../src/sandbox/paging/large-patient';

const RESOURCES = 2_000;
const PAGE = 500;
let server: SandboxServer;

beforeAll(async () => {
  server = await startSandboxServer({ name: 'large-patient', auth: 'none' });
  await server.load(largePatient(RESOURCES));
}, 60_000);

afterAll(async () => {
  await server.stop();
});

test('pages a large patient at _count=500 to its end, every resource once', async () => {
  const first = largePatientSearchUrl(server.baseUrl, PAGE);
  const agent = new Agent({ keepAlive: true });
  try {
    const cold = await pageThroughRaw(first, agent);
    const warm = await pageThroughRaw(first, agent);
    expect(cold).toEqual({ resources: RESOURCES, pages: RESOURCES / PAGE });
    expect(warm).toEqual(cold);
  } finally {
    agent.destroy();
  }
  const parsed = await pageThroughParsed(first);
  expect(parsed.pages).toBe(RESOURCES / PAGE);
  expect(parsed.ids).toHaveLength(RESOURCES);
  expect(new Set(parsed.ids).size).toBe(RESOURCES);
});
