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
                inputs, columns, rejected = sp.transform(plugin, case["content_type"], body)
                rows = [list(row) for row in zip(*columns)] if inputs else []
                self.assertEqual(rows, case["rows"])
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
                inputs, columns, refused = sp.transform(plugin, sp.CANONICAL_CONTENT_TYPE, records)
                again = [list(row) for row in zip(*columns)] if inputs else []
                self.assertEqual(again, case["rows"], "rows from the canonical records")
                self.assertEqual(refused, [])


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
        self.assertEqual(described["table"][2], [("heart_rate", "int32", True, "")])


if __name__ == "__main__":
    unittest.main()
