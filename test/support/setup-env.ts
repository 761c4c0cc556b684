// Quiet logs in tests unless asked for; tests that check log output attach their own transport.
process.env.LOG_LEVEL ??= 'warn';
