#!/usr/bin/env node
// Compile contracts/src/*.sol with the pinned solcjs and write contracts/artifacts/<Name>.json.
//
//   node contracts/build.js           compile and (re)write the artifacts
//   node contracts/build.js --check   compile and compare with the committed artifacts; exit 1 on
//                                     any difference, write nothing
//
// Deterministic: the same sources and the same solc give byte-identical artifacts. Each artifact
// records the compiler version, the settings, the sha256 of its own source file (sourceSha256) and
// of every source in the compilation (sources), so a stale artifact is found without node
// (tests/unit/test_artifacts.py).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SRC_DIR = path.join(__dirname, 'src');
const OUT_DIR = path.join(__dirname, 'artifacts');

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'ipfs' },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function loadSolc() {
  let solc;
  try {
    solc = require(path.join(ROOT, 'node_modules', 'solc'));
  } catch (err) {
    console.error('solc is not installed: run `make setup` (or `npm ci`) first.');
    process.exit(2);
  }
  const pinned = require(path.join(ROOT, 'package.json')).dependencies.solc;
  const version = solc.version();
  if (!version.startsWith(pinned + '+')) {
    console.error(`solc ${version} is installed but package.json pins ${pinned}: run \`npm ci\`.`);
    process.exit(2);
  }
  return solc;
}

function readSources() {
  const sources = {};
  for (const file of fs.readdirSync(SRC_DIR).filter((f) => f.endsWith('.sol')).sort()) {
    sources[`src/${file}`] = { content: fs.readFileSync(path.join(SRC_DIR, file), 'utf8') };
  }
  return sources;
}

function compile(solc, sources) {
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage || e.message);
  if (errors.length > 0) {
    console.error(`compilation failed with ${errors.length} error(s)`);
    process.exit(1);
  }
  return output;
}

function artifacts(solc, sources, output) {
  const sourceHashes = {};
  for (const name of Object.keys(sources)) sourceHashes[name] = sha256(sources[name].content);
  const result = {};
  for (const sourceName of Object.keys(output.contracts).sort()) {
    for (const contractName of Object.keys(output.contracts[sourceName]).sort()) {
      const c = output.contracts[sourceName][contractName];
      if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
      const artifact = {
        contractName,
        sourceName,
        compiler: { name: 'solc', version: solc.version(), settings: SETTINGS },
        sourceSha256: sourceHashes[sourceName],
        sources: sourceHashes,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
      result[`${contractName}.json`] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  return result;
}

function main() {
  const check = process.argv.includes('--check');
  const solc = loadSolc();
  const sources = readSources();
  const files = artifacts(solc, sources, compile(solc, sources));
  if (check) {
    const existing = fs.existsSync(OUT_DIR)
      ? fs.readdirSync(OUT_DIR).filter((f) => f.endsWith('.json'))
      : [];
    const stale = Object.keys(files).filter(
      (f) => !fs.existsSync(path.join(OUT_DIR, f)) ||
        fs.readFileSync(path.join(OUT_DIR, f), 'utf8') !== files[f],
    );
    const extra = existing.filter((f) => !(f in files));
    if (stale.length || extra.length) {
      console.error(`artifacts out of date: ${[...stale, ...extra].join(', ')}; run \`make contracts\``);
      process.exit(1);
    }
    console.log(`artifacts up to date (${Object.keys(files).length}, solc ${solc.version()})`);
    return;
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const f of fs.readdirSync(OUT_DIR).filter((f) => f.endsWith('.json'))) {
    if (!(f in files)) fs.unlinkSync(path.join(OUT_DIR, f));
  }
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(OUT_DIR, f), text);
  console.log(`wrote ${Object.keys(files).length} artifacts to contracts/artifacts (solc ${solc.version()})`);
}

main();
