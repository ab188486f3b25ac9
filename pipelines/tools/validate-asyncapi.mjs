// Validate an AsyncAPI document with the official parser, Avro payloads included.
// Usage: node validate-asyncapi.mjs docs/asyncapi.yaml ; exit 1 on any error-severity finding.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: validate-asyncapi.mjs <document>");
  process.exit(2);
}
const parser = new Parser();
parser.registerSchemaParser(AvroSchemaParser());
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), { source: path });
const severity = ["error", "warning", "info", "hint"];
for (const d of diagnostics) {
  console.log(`${path}:${(d.range?.start?.line ?? 0) + 1}: ${severity[d.severity]}: ${d.message} (${d.code}) at ${d.path.join(".")}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.error(`${path}: INVALID, ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ${document.operations().length} operations, ${document.messages().length} messages`);
