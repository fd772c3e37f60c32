"""The plugin's logic on the MIMIC-III demo files, under a plain CPython:
PYTHONPATH=../../sdk-python python3 -m unittest (tests/run does this)."""

import os
import unittest

import app
import sluice_plugin as sp

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "data", "mimic-iii-demo")


def rows_of(file):
    with open(os.path.join(DATA, file), "rb") as body:
        return sp.transform(sp.configured(app.Plugin), "text/csv", [body.read()])


class Mimic(unittest.TestCase):
    def test_each_file_goes_to_its_table_whole(self):
        for file, table, count in [("PATIENTS.csv", "patients", 40), ("ADMISSIONS.csv", "admissions", 44),
                                   ("LABEVENTS.csv", "labevents", 22364)]:
            with self.subTest(file):
                out = rows_of(file)
                self.assertEqual(out.rejected, [])
                self.assertEqual({name: len(out.rows(name)) for name in out.tables},
                                 {name: count if name == table else 0 for name in out.tables})

    def test_a_record_without_a_marker_or_breaking_a_rule_is_rejected_with_its_field(self):
        plugin = sp.configured(app.Plugin)
        body = (b'"ROW_ID","SUBJECT_ID","ITEMID","CHARTTIME","VALUE","FLAG"\n'
                b'1,10006,50893,2164-10-23 21:09:00,"9.2",\n'
                b'2,10006,50893,2164-10-23 21:09:00,"9.2","odd"\n')
        out = sp.transform(plugin, "text/csv", [body])
        self.assertEqual(len(out.rows("labevents")), 1)
        self.assertEqual([(r.record, r.field) for r in out.rejected], [(1, "FLAG")])
        unknown = sp.transform(plugin, "application/json", [b'{"ROW_ID": 1, "SUBJECT_ID": 2}'])
        self.assertEqual(unknown.rejected[0].reason, "the record has none of the fields that say its table "
                                                     "(DOB for patients, ADMITTIME for admissions, ITEMID for labevents)")

    def test_keys_are_the_subject(self):
        with open(os.path.join(DATA, "ADMISSIONS.csv"), "rb") as body:
            _, origins, _ = sp.split(sp.configured(app.Plugin), "text/csv", [body.read()])
        self.assertEqual(origins[0].key, "10006")


if __name__ == "__main__":
    unittest.main()
