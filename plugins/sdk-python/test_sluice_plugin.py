"""The Python SDK held to the shared test vectors (plugins/sdk-vectors/flat-records.json), which
the Rust SDK, the reference, passes too. Run: python3 -m unittest (in this folder)."""

import json
import os
import unittest

import sluice_plugin as sp

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk-vectors", "flat-records.json")


def plugin_for(vectors):
    class Vectors(sp.RecordPlugin):
        name, version, table, key = "vectors", "0.1.0", "vectors", vectors["key"]
        fields = [sp.Field(f["source"], f["type"], nullable=f["nullable"]) for f in vectors["fields"]]
    return Vectors()


class Vectors(unittest.TestCase):
    def test_every_vector_reads_as_written(self):
        with open(VECTORS, encoding="utf-8") as file:
            vectors = json.load(file)
        plugin = plugin_for(vectors)
        self.assertGreaterEqual(len(vectors["cases"]), 20)
        for case in vectors["cases"]:
            with self.subTest(case["name"]):
                body = [case["body"].encode("utf-8")]
                out = sp.transform(plugin, case["content_type"], body)
                rejected = out.rejected
                self.assertEqual(out.rows(), case["rows"])
                self.assertEqual(len(rejected), len(case["rejected"]), rejected)
                for got, want in zip(rejected, case["rejected"]):
                    self.assertEqual(got.record, want["record"])
                    self.assertEqual(got.field, want["field"])
                    if "reason" in want:
                        self.assertEqual(got.reason, want["reason"])
                    else:
                        self.assertTrue(got.reason.startswith(want["reason_prefix"] + ":"), got.reason)

                records, origins, split_rejected = sp.split(plugin, case["content_type"], body)
                self.assertEqual([o.key for o in origins], case["keys"])
                self.assertEqual(len(split_rejected), len(case["rejected"]))
                again = sp.transform(plugin, sp.CANONICAL_CONTENT_TYPE, records)
                self.assertEqual(again.rows(), case["rows"], "rows from the canonical records")
                self.assertEqual(again.rejected, [])


class Settings(unittest.TestCase):
    def test_the_manifest_lists_settings_and_refuses_bad_column_names(self):
        class Bad(sp.RecordPlugin):
            name, version, table = "bad", "0.1.0", "bad"
            fields = [sp.Field("Heart Rate", sp.INT32)]
        with self.assertRaisesRegex(ValueError, "column name `heart rate` is not a lowercase identifier"):
            sp.manifest(Bad)

        class Good(sp.RecordPlugin):
            name, version, table = "good", "0.1.0", "good"
            fields = [sp.Field("Heart Rate", sp.INT32, column="heart_rate")]
            settings = [sp.Setting("drop-unknown", "Drop unknown values.", "false")]
        described = sp.manifest(Good)
        self.assertEqual(described["settings"], [("drop-unknown", "Drop unknown values.", "false")])
        self.assertEqual(described["tables"][0][2], [("heart_rate", "int32", True, "")])

        class Indistinct(sp.RecordPlugin):
            name, version, table = "twice", "0.1.0", "twice"
            fields = [sp.Field("PatientID", sp.STRING), sp.Field("Patient_ID", sp.STRING, column="patient_id")]
        with self.assertRaisesRegex(ValueError, r"^fields `PatientID` and `Patient_ID` name one sender field \(names "
                                    r"are matched ignoring case, spaces, `_`, `-` and `\.`\): declare it once$"):
            sp.manifest(Indistinct)

    def test_the_key_is_named_as_fields_are_and_must_be_one(self):
        class Spelt(sp.RecordPlugin):
            name, version, table, key = "spelt", "0.1.0", "spelt", "patient_id"
            fields = [sp.Field("PatientID", sp.STRING)]
        _, origins, _ = sp.split(Spelt(), "application/json", [b'{"PatientID": "p1"}'])
        self.assertEqual([o.key for o in origins], ["p1"])

        class Unknown(sp.RecordPlugin):
            name, version, table, key = "unknown", "0.1.0", "unknown", "Patient"
            fields = [sp.Field("PatientID", sp.STRING)]
        with self.assertRaisesRegex(ValueError, r"^the key of table `unknown`, Patient, is not one of its fields$"):
            sp.manifest(Unknown)

    def test_integers_of_thousands_of_digits_are_out_of_range(self):
        with self.assertRaisesRegex(ValueError, "^is out of the integer range$"):
            sp.convert("9" * 5000, sp.INT64)


class Configured(unittest.TestCase):
    class Plugin(sp.RecordPlugin):
        name, version, table = "p", "0.1.0", "p"
        fields = [sp.Field("A", sp.STRING)]
        settings = [sp.Setting("mode", "How.", "fast"), sp.Setting("extra", "Optional.")]

        def configure(self, settings):
            self.seen = settings

    def test_defaults_are_filled_and_unknown_keys_refused_as_the_host_does(self):
        self.assertEqual(sp.configured(self.Plugin).seen, {"mode": "fast"})
        self.assertEqual(sp.configured(self.Plugin, {"extra": "x"}).seen, {"extra": "x", "mode": "fast"})
        with self.assertRaisesRegex(ValueError, r"^unknown setting `nope` \(known settings: extra, mode\)$"):
            sp.configured(self.Plugin, {"nope": "1"})


class GuideExample(unittest.TestCase):
    """The Python example of plugins/README.md, run as written (as the Rust one is a doctest)."""

    def test_the_guide_example_runs(self):
        import re
        import tempfile
        guide = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
        with open(guide, encoding="utf-8") as file:
            blocks = re.findall(r"```python\n(.*?)```", file.read(), re.S)
        self.assertEqual(len(blocks), 1)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "pyproject.toml"), "w") as file:
                file.write('[project]\nname = "ward-obs"\nversion = "1.2.3"\n')
            app = {"__file__": os.path.join(folder, "app.py"), "__name__": "app"}
            exec(compile(blocks[0], "README.md", "exec"), app)
        self.assertEqual((app["NAME"], app["VERSION"]), ("ward-obs", "1.2.3"))
        plugin = sp.configured(app["Plugin"])
        body = b"PatientID,ObservedAt,HeartRate,Temperature\np1,2026-11-30 08:00,72,36.8\np2,2026-11-30 09:00,80,47\n"
        out = sp.transform(plugin, "text/csv", [body])
        self.assertEqual(out.inputs(), [0])
        self.assertEqual([(r.record, r.reason, r.field) for r in out.rejected],
                         [(1, "Temperature is above max-celsius", "Temperature")])
        with self.assertRaisesRegex(ValueError, "max-celsius must be a number"):
            sp.configured(app["Plugin"], {"max-celsius": "hot"})


if __name__ == "__main__":
    unittest.main()
