/** The test Redis (CI starts one on 127.0.0.1:6379); each test file uses its own key prefix. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
