// Validate an AsyncAPI document with the official parser: `node validate.mjs FILE [--strict]`.
// Prints every diagnostic of severity error (and warning) with its JSON path; exits 1 when
// there is an error (with --strict, also when there is a warning), 2 on bad usage.
import { readFile } from "node:fs/promises";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const args = process.argv.slice(2);
const strict = args.includes("--strict");
const files = args.filter((arg) => arg !== "--strict");
if (files.length !== 1) {
  console.error("usage: node validate.mjs FILE [--strict]");
  process.exit(2);
}

const source = await readFile(files[0], "utf8");
const diagnostics = await new Parser().validate(source, { source: files[0] });
const names = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning" };
let failed = false;
for (const d of diagnostics) {
  const name = names[d.severity];
  if (name === undefined) continue; // information and hints
  failed ||= d.severity === DiagnosticSeverity.Error || strict;
  const where = (d.path ?? []).join(".") || "(document)";
  console.log(`${name} ${d.code}: ${d.message} at ${where}`);
}
console.log(failed ? "INVALID" : "VALID");
process.exit(failed ? 1 : 0);
