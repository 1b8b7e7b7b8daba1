// Builds the dev chain's raw chain spec from the runtime wasm alone: the runtime's own GenesisBuilder
// API (default preset) runs inside chopsticks' wasm executor and its storage writes, plus `:code`,
// become `genesis.raw.top`. Also writes the runtime's metadata (V16) for the compatibility tests.
//
//   node genesis.mjs --wasm runtime.wasm --spec spec.json --metadata metadata.scale
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runTask, emptyTaskHandler, destroyWorker } from '@acala-network/chopsticks-core';

const { values: args } = parseArgs({
  options: { wasm: { type: 'string' }, spec: { type: 'string' }, metadata: { type: 'string' } },
});
if (!args.wasm || !args.spec || !args.metadata) {
  console.error('usage: node genesis.mjs --wasm FILE --spec OUT.json --metadata OUT.scale');
  process.exit(2);
}

const toHex = (bytes) => `0x${Buffer.from(bytes).toString('hex')}`;
const fromHex = (hex) => Buffer.from(hex.slice(2), 'hex');

// SCALE compact length prefix (lengths below 2^30 are all this script needs).
const compact = (n) => {
  if (n < 1 << 6) return Buffer.from([n << 2]);
  if (n < 1 << 14) return Buffer.from([((n << 2) | 1) & 0xff, n >> 6]);
  if (n < 1 << 30) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(((n << 2) | 2) >>> 0);
    return b;
  }
  throw new Error(`length ${n} too large`);
};
const decodeCompact = (buf, at) => {
  const mode = buf[at] & 3;
  if (mode === 0) return [buf[at] >> 2, at + 1];
  if (mode === 1) return [buf.readUInt16LE(at) >> 2, at + 2];
  if (mode === 2) return [buf.readUInt32LE(at) >>> 2, at + 4];
  throw new Error('big compact lengths are not expected here');
};
const encodeBytes = (bytes) => Buffer.concat([compact(bytes.length), Buffer.from(bytes)]);
// Decodes an `Option<Vec<u8>>` (the shape of both get_preset's and metadata_at_version's results).
const decodeOptionBytes = (hex, what) => {
  const buf = fromHex(hex);
  if (buf[0] !== 1) throw new Error(`${what}: the runtime returned None`);
  const [len, start] = decodeCompact(buf, 1);
  return buf.subarray(start, start + len);
};

const wasm = toHex(readFileSync(args.wasm));
const call = async (name, params) => {
  const res = await runTask(
    { wasm, calls: [[name, params]], mockSignatureHost: false, allowUnresolvedImports: false, runtimeLogLevel: 1 },
    // Genesis starts from empty storage: every read misses.
    { ...emptyTaskHandler, getStorage: async () => undefined, getNextKey: async () => undefined },
  );
  if ('Error' in res) throw new Error(`${name}: ${res.Error}`);
  return res.Call;
};

// The full default config (preset None), patched with the "development" preset (//Alice sudo and
// rich, the dev accounts funded) the way a node merges a preset: objects recursively, the rest replaced.
const presetJson = async (id) => {
  const arg = id === null ? '0x00' : toHex(Buffer.concat([Buffer.from([1]), encodeBytes(Buffer.from(id))]));
  const bytes = decodeOptionBytes((await call('GenesisBuilder_get_preset', [arg])).result, `get_preset(${id})`);
  return JSON.parse(bytes.toString('utf8'));
};
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const merge = (base, patch) => {
  for (const [k, v] of Object.entries(patch)) base[k] = isObject(v) && isObject(base[k]) ? merge(base[k], v) : v;
  return base;
};
const config = merge(await presetJson(null), await presetJson('development'));
const built = await call('GenesisBuilder_build_state', [toHex(encodeBytes(Buffer.from(JSON.stringify(config))))]);
if (built.result !== '0x00') {
  const msg = fromHex(built.result).subarray(1);
  throw new Error(`build_state failed: ${msg.toString()}`);
}
const top = { '0x3a636f6465': wasm }; // ':code'
for (const [key, value] of built.storageDiff) if (value !== null) top[key] = value;
// Chopsticks' genesis provider walks keys in insertion order when it pages through storage: sort them.
const sortedTop = Object.fromEntries(Object.entries(top).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const spec = {
  name: 'covenant devnet',
  id: 'covenant_devnet',
  chainType: 'Development',
  properties: { ss58Format: 42, tokenDecimals: 9, tokenSymbol: 'TAO' },
  genesis: { raw: { top: sortedTop, childrenDefault: {} } },
};
const metadata = decodeOptionBytes(
  (await call('Metadata_metadata_at_version', ['0x10000000'])).result,
  'metadata_at_version(16)',
);

const writeAtomic = (path, data) => {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
};
writeAtomic(args.spec, JSON.stringify(spec));
writeAtomic(args.metadata, metadata);
console.error(`genesis: ${Object.keys(sortedTop).length} storage entries, metadata ${metadata.length} bytes`);
await destroyWorker?.();
process.exit(0);
