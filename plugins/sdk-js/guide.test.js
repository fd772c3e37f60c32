// The JavaScript example of plugins/README.md, run as written (as the Rust one is a doctest and
// the Python one runs in the Python SDK's tests).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

test("the guide's example runs", async () => {
  const guide = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const blocks = [...guide.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 1);
  const dir = mkdtempSync(join(tmpdir(), "sluice-guide-"));
  writeFileSync(join(dir, "app.js"), blocks[0]);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "ward-obs", version: "1.2.3", type: "module" }));
  copyFileSync(new URL("./sluice-plugin.js", import.meta.url), join(dir, "sluice-plugin.js"));
  const app = await import(pathToFileURL(join(dir, "app.js")));
  const sp = await import(pathToFileURL(join(dir, "sluice-plugin.js")));
  assert.equal(app.source.describe().name, "ward-obs");
  assert.equal(app.source.describe().version, "1.2.3");
  const body = new TextEncoder().encode(
    "PatientID,ObservedAt,HeartRate,Temperature\np1,2026-11-30 08:00,72,36.8\np2,2026-11-30 09:00,80,47\n");
  const out = sp.transform(sp.configured(app.plugin), "text/csv", [body]);
  assert.deepEqual(out.inputs, [0]);
  assert.deepEqual(out.rejected.map((r) => [r.record, r.reason, r.field]),
    [[1, "Temperature is above max-celsius", "Temperature"]]);
  assert.throws(() => sp.configured(app.plugin, { "max-celsius": "hot" }), { message: "max-celsius must be a number" });
});
