// Runs the dev chain: chopsticks in genesis mode on a raw chain spec, serving JSON-RPC over ws and
// http on HOST:PORT and building one block every BLOCK_MS milliseconds (with whatever is in the pool).
//
//   node run.mjs --spec spec.json [--host 127.0.0.1] [--port 9944] [--block-ms 500]
//
// --port 0 picks a free port. Once the first block is built it prints one line on stdout:
//   ready ws://HOST:PORT
// SIGINT/SIGTERM close the server and exit 0. Chopsticks' log level comes from LOG_LEVEL (default warn).
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    spec: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '9944' },
    'block-ms': { type: 'string', default: '500' },
  },
});
const port = Number(args.port);
const blockMs = Number(args['block-ms']);
if (!args.spec || !Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(blockMs) || blockMs < 1) {
  console.error('usage: node run.mjs --spec FILE [--host 127.0.0.1] [--port 9944] [--block-ms 500]');
  process.exit(2);
}
process.env.LOG_LEVEL ??= 'warn';
// Imported after LOG_LEVEL is set: chopsticks reads it when its logger module loads.
const { setupWithServer, BuildBlockMode } = await import('@acala-network/chopsticks');

const ctx = await setupWithServer({
  genesis: args.spec,
  host: args.host,
  port,
  'build-block-mode': BuildBlockMode.Manual,
});
const actual = Number(ctx.addr.split(':').pop());
if (port !== 0 && actual !== port) {
  // Chopsticks moves to the next free port when the one asked for is taken: refuse instead.
  console.error(`port ${port} is in use`);
  await ctx.close();
  process.exit(1);
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await ctx.close().catch(() => {});
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

// A steady block clock: build, then sleep for what is left of the period (never overlapping builds).
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let first = true;
while (!stopping) {
  const started = Date.now();
  try {
    await ctx.chain.newBlock();
  } catch (err) {
    console.error(`block production failed: ${err?.stack ?? err}`);
  }
  if (first) {
    first = false;
    console.log(`ready ws://${args.host}:${actual}`);
  }
  await sleep(Math.max(0, blockMs - (Date.now() - started)));
}
