// The plugin on sample.csv, under a plain Node.js: npm test
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as sp from "./sluice-plugin.js";
import { plugin } from "./app.js";

test("the sample gives three rows and two rejections", () => {
  const sample = readFileSync(new URL("./sample.csv", import.meta.url));
  const out = sp.transform(sp.configured(plugin), "text/csv", [sample]);
  assert.equal(out.rows.length, 3);
  assert.deepEqual(out.rejected.map((r) => r.reason), [
    "ObservedAt is not a date (expected YYYY-MM-DD or M/D/YYYY)",
    "PatientID is missing or Unknown",
  ]);
});
