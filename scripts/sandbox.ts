/**
 * Starts the sandbox world (care-team-a, care-team-b, referring-ehr) and keeps it up until
 * SIGINT/SIGTERM. Runs compiled (`node dist/scripts/sandbox.js`); options: see src/sandbox/cli-args.ts.
 *
 *     npm run sandbox -- --port-base 8100 --fault 'care-team-a:GET /Observation*:429:retryAfter=2:nth=3'
 */
import { parseSandboxCliArgs, SANDBOX_CLI_USAGE } from '../src/sandbox/cli-args';
import { startSandboxWorld, WORLD_SERVER_NAMES } from '../src/sandbox/sandbox-world';

async function main(): Promise<void> {
  let command;
  try {
    command = parseSandboxCliArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${SANDBOX_CLI_USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (command.kind === 'help') {
    process.stdout.write(SANDBOX_CLI_USAGE);
    return;
  }
  const world = await startSandboxWorld(command.options);
  const lines = [`Sandbox FHIR servers (auth: ${command.options.auth}; client id: ${world.client.clientId}, ${world.client.alg}, kid ${world.client.kid})`];
  for (const name of WORLD_SERVER_NAMES) {
    const server = world.servers[name];
    const seeded = world.seeded[name];
    lines.push(
      `  ${name.padEnd(14)} base ${server.baseUrl}`,
      `  ${''.padEnd(14)} token ${server.auth === 'smart' ? server.tokenUrl : '(auth off)'}   paging ${server.paging}   ${seeded ? `${seeded.total} resources from ${name}.json` : 'empty (no fixture)'}`
    );
    for (const rule of server.faults.list()) {
      lines.push(`  ${''.padEnd(14)} fault ${rule.input.match} -> ${rule.input.action.kind}`);
    }
  }
  lines.push(`  private key (JWK): ${world.client.privateKeyPath}`, `  public JWKS:       ${world.client.jwksPath}`, 'Press Ctrl+C to stop.');
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    process.stdout.write(`${signal}: stopping…\n`);
    world.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`Failed to stop cleanly: ${String(err)}\n`);
        process.exit(1);
      }
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
