/**
 * The one binary. ROLE=api | worker | all (default) chooses what this process runs, so the API
 * and the workers can scale apart on PostgreSQL; with embedded PGlite only `all` is allowed.
 */
import { ConfigError, loadConfig } from './config';
import { errorFields, logger, setLogLevel } from './log';
import { SchemaMismatchError } from './db/schema-version';
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

  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      // A second signal (Ctrl-C twice): stop waiting.
      logger.warn('second signal: exiting without waiting for the stop', { signal, pending: service.pendingStop() });
      process.exit(1);
    }
    shuttingDown = true;
    const started = Date.now();
    const timeoutMs = config.shutdownTimeoutMs;
    logger.info('shutting down', { signal, activeJobs: service.activeJobs(), timeoutMs });
    // The whole stop has SHUTDOWN_TIMEOUT_MS: past it the steps still waiting (their names only) are
    // logged and the process exits non-zero, rather than hang until the orchestrator kills it (a
    // dependency gone away can leave a close waiting for ever) or come back to work half-stopped.
    const deadline = setTimeout(() => {
      logger.error('shutdown timed out', { timeoutMs, durationMs: Date.now() - started, pending: service.pendingStop(), activeJobs: service.activeJobs() });
      process.exit(1);
    }, timeoutMs);
    service.stop().then(
      () => {
        clearTimeout(deadline);
        logger.info('stopped', { durationMs: Date.now() - started });
        process.exit(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        logger.error('shutdown failed', { durationMs: Date.now() - started, ...errorFields(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  logger.error('startup failed', errorFields(err));
  // A database migrated by a newer release: its message holds only version numbers and guidance
  // (no value from the database), and is written whole (the scrubbed one is cut at 300 characters).
  // Anything else is scrubbed as the log line is: stderr is collected like the log, and a startup
  // error (a database's or a file's) may quote the values or paths that failed.
  const message = err instanceof SchemaMismatchError ? err.message : errorFields(err).errorMessage;
  process.stderr.write(`startup failed: ${message}\n`);
  process.exit(1);
});
