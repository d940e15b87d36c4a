// Compiles chain/contracts/*.sol offline with solc-js (the npm `solc` package) and writes one
// JSON artifact per contract to chain/artifacts/<Name>.json: {contractName, sourceName, abi,
// bytecode, deployedBytecode, compiler}. Run by scripts/setup.sh when the sources change.
//
// solc.compile() is called in-process: `solcjs --standard-json` truncated its stdout at about
// 128 KiB when piped. Any compiler error fails the run (exit 1) with the messages printed.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = path.dirname(fileURLToPath(import.meta.url));
const contractsDir = path.join(here, "contracts");
const outDir = path.join(here, "artifacts");
const nodeModules = path.join(here, "node_modules");

const sources = {};
for (const f of fs.readdirSync(contractsDir).sort()) {
  if (f.endsWith(".sol")) {
    sources[`contracts/${f}`] = { content: fs.readFileSync(path.join(contractsDir, f), "utf8") };
  }
}
if (Object.keys(sources).length === 0) {
  console.error("compile: no .sol files in", contractsDir);
  process.exit(1);
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    viaIR: false,
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

// Resolves `import "@openzeppelin/..."` (and any other package) from chain/node_modules only.
function findImports(importPath) {
  const candidates = [path.join(nodeModules, importPath), path.join(here, importPath)];
  for (const c of candidates) {
    if (fs.existsSync(c)) return { contents: fs.readFileSync(c, "utf8") };
  }
  return { error: `import not found: ${importPath} (run npm ci in chain/)` };
}

const t0 = Date.now();
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) {
  if (e.severity !== "error") console.error(e.formattedMessage || e.message);
}
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage || e.message);
  console.error(`compile: ${errors.length} error(s); no artifacts written`);
  process.exit(1);
}

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
let n = 0;
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  if (!sourceName.startsWith("contracts/")) continue; // only our own contracts get artifacts
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      compiler: { version: solc.version(), evmVersion: "cancun", optimizer: true, runs: 200 },
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 1) + "\n");
    n += 1;
  }
}
console.error(`compile: ${n} artifacts in ${path.relative(process.cwd(), outDir) || outDir} (solc ${solc.version()}, ${Date.now() - t0} ms)`);
