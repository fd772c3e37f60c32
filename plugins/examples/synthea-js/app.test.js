// The plugin's logic on Synthea's observations.csv under Node.js: npm test (after ./build, which
// installs nothing this test needs; it runs without node_modules too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as sp from "../../sdk-js/sluice-plugin.js";
import { plugin } from "./app.js";

test("every observation is accepted and keyed by its patient", () => {
  const body = readFileSync(new URL("../../../tests/data/synthea/observations.csv", import.meta.url));
  const out = sp.transform(sp.configured(plugin), "text/csv", [body]);
  assert.deepEqual(out.rejected, []);
  assert.equal(out.rows.length, 6750);
  const split = sp.split(sp.configured(plugin), "text/csv", [body]);
  assert.equal(split.origins[0].key, "593aaa05-d864-1df7-5b96-155fbdb19f28");
});

test("a numeric observation without a number is rejected with its field", () => {
  const body = new TextEncoder().encode(
    "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n"
    + "2021-08-23T03:26:50Z,p,e,vital-signs,8302-2,Body Height,tall,cm,numeric\n");
  const out = sp.transform(sp.configured(plugin), "text/csv", [body]);
  assert.deepEqual(out.rejected.map((r) => [r.reason, r.field]), [["VALUE is not a number though TYPE is numeric", "VALUE"]]);
});
