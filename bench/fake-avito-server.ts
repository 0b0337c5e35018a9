import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';

/**
 * The fake Avito in its own process, seeded, for benchmarks: prints `{"url":…}` on one line
 * and serves until killed.
 */
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const fake = new SandboxAvito();
await fake.start();
fake.seed(Number(args.get('chats') ?? 200), Number(args.get('messages') ?? 100));
process.stdout.write(`${JSON.stringify({ url: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret, userId: fake.userId })}\n`);
process.on('SIGTERM', () => {
  void fake.stop().then(() => process.exit(0));
});
