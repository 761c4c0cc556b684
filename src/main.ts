/**
 * The one binary. ROLE=api | worker | all (default) chooses what this process runs, so the API
 * and the workers can scale apart on PostgreSQL; with embedded PGlite only `all` is allowed.
 */
import { ConfigError, loadConfig } from './config';
import { errorFields, logger, setLogLevel } from './log';
import { startService } from './service';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      // Written as is, not scrubbed (that would cut its quoted guidance): it names variables and
      // says what they need, never their values, so it holds no PHI by construction (see loadConfig).
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  setLogLevel(config.logLevel);
  if (config.auth.usingDevelopmentSecret) {
    logger.warn('no AUTH_JWT_SECRET or AUTH_JWKS_URL set: using the development secret under DATA_DIR (never in production)');
  }
  if (!config.databaseUrl) {
    logger.warn('DATABASE_URL not set: using embedded PGlite under DATA_DIR (single process, no fsync; use PostgreSQL in production)');
  }
  const service = await startService(config);
  logger.info('service started', { role: config.role, backend: service.db.backend });
  if (service.url) process.stdout.write(`Second Opinion Bridge (${config.role}) on ${service.url}\n`);

  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info('shutting down', { signal });
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', errorFields(err));
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  logger.error('startup failed', errorFields(err));
  // Scrubbed as the log line is: stderr is collected like the log, and a startup error (a database's
  // or a file's) may quote the values or paths that failed.
  process.stderr.write(`startup failed: ${errorFields(err).errorMessage}\n`);
  process.exit(1);
});
