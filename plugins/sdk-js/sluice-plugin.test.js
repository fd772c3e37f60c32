// The JavaScript SDK held to the shared test vectors (plugins/sdk-vectors/flat-records.json),
// which the Rust SDK, the reference, passes too. Run: node --test (in this folder).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as sp from "./sluice-plugin.js";

const vectors = JSON.parse(readFileSync(new URL("../sdk-vectors/flat-records.json", import.meta.url), "utf8"));

const plugin = {
  name: "vectors", version: "0.1.0", table: "vectors", key: vectors.key,
  fields: vectors.fields.map((f) => sp.field(f.source, f.type, { nullable: f.nullable })),
};

// JSON.parse reads the vectors' integers as doubles (one of them is 2^53 + 1), so values are
// compared as doubles here; the Rust and Python tests compare them exactly.
const plain = (rows) => rows.map((row) => row.map((v) => (typeof v === "bigint" ? Number(v) : v)));

test("every vector reads as written", () => {
  assert.ok(vectors.cases.length >= 20);
  for (const c of vectors.cases) {
    const body = [new TextEncoder().encode(c.body)];
    const out = sp.transform(plugin, c.content_type, body);
    assert.deepEqual(plain(out.rows), c.rows, c.name);
    assert.equal(out.rejected.length, c.rejected.length, `${c.name}: ${JSON.stringify(out.rejected)}`);
    out.rejected.forEach((got, i) => {
      const want = c.rejected[i];
      assert.equal(got.record, want.record, c.name);
      assert.equal(got.field ?? null, want.field, c.name);
      if (want.reason !== undefined) assert.equal(got.reason, want.reason, c.name);
      else assert.ok(got.reason.startsWith(`${want.reason_prefix}:`), `${c.name}: ${got.reason}`);
    });
    const split = sp.split(plugin, c.content_type, body);
    assert.deepEqual(split.origins.map((o) => o.key ?? null), c.keys, `${c.name}: keys`);
    assert.equal(split.rejected.length, c.rejected.length, c.name);
    const again = sp.transform(plugin, sp.CANONICAL_CONTENT_TYPE, split.records.map((r) => new TextEncoder().encode(r)));
    assert.deepEqual(plain(again.rows), c.rows, `${c.name}: rows from the canonical records`);
    assert.deepEqual(again.rejected, [], c.name);
  }
});

test("settings are applied as the host applies them", () => {
  const withSettings = {
    ...plugin,
    settings: [sp.setting("mode", "How.", "fast"), sp.setting("extra", "Optional.")],
    configure(settings) { this.seen = settings; },
  };
  assert.deepEqual(sp.configured(withSettings).seen, { mode: "fast" });
  assert.deepEqual(sp.configured(withSettings, { extra: "x" }).seen, { extra: "x", mode: "fast" });
  assert.throws(() => sp.configured(withSettings, { nope: "1" }), { message: "unknown setting `nope` (known settings: extra, mode)" });
});

test("what JavaScript cannot read exactly or tell apart is refused saying so", () => {
  assert.equal(sp.convert(9007199254740991, sp.INT64), 9007199254740991n, "2^53 - 1: exact");
  assert.throws(() => sp.convert(12345678901234567, sp.INT64),
    { message: "is a JSON number past 2^53, which JavaScript plugins cannot read exactly: send it as a JSON string" });
  assert.equal(sp.convert("12345678901234567", sp.INT64), 12345678901234567n, "as a JSON string: exact");
  assert.throws(() => sp.convert(1e19, sp.INT64), { message: "is out of the integer range" });
  assert.equal(sp.indistinctNames(["PatientID", "LabValue", "patientid"]), null, "one name in two cases");
  assert.equal(sp.indistinctNames(["PatientID", "Patient_ID"]),
    "fields `PatientID` and `Patient_ID` name one sender field (names are matched ignoring case, spaces, `_`, `-` "
      + "and `.`): declare it once");
  assert.throws(() => sp.exportPlugin({ name: "twice", version: "0.1.0", table: "twice",
    fields: [sp.field("PatientID", sp.STRING), sp.field("Patient_ID", sp.STRING, { column: "patient_id" })] }),
  /^Error: fields `PatientID` and `Patient_ID` name one sender field/);
});

test("the key is named as fields are, and must be one of them", () => {
  const spelt = { name: "spelt", version: "0.1.0", table: "spelt", key: "patient_id", fields: [sp.field("PatientID", sp.STRING)] };
  const split = sp.split(spelt, "application/json", [new TextEncoder().encode('{"PatientID": "p1"}')]);
  assert.deepEqual(split.origins.map((o) => o.key), ["p1"]);
  assert.throws(() => sp.exportPlugin({ ...spelt, key: "Patient" }),
    { message: "the key of table `spelt`, Patient, is not one of its fields" });
});

test("a plugin is named after its npm package, without the scope", () => {
  assert.equal(sp.pluginName("@st-mary/ward-vitals"), "ward-vitals");
  assert.equal(sp.pluginName("ward_vitals"), "ward_vitals");
  assert.throws(() => sp.pluginName("@st-mary/Ward.Vitals"), {
    message: "plugin name `Ward.Vitals` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter",
  });
  const scoped = sp.exportPlugin({ ...plugin, name: "@st-mary/vectors" });
  assert.equal(scoped.describe().name, "vectors");
});
