"""The plugin on sample.csv, under a plain CPython: python3 -m unittest"""

import os
import unittest

import app
import sluice_plugin as sp

HERE = os.path.dirname(os.path.abspath(__file__))


class Sample(unittest.TestCase):
    def test_the_sample_gives_three_rows_and_two_rejections(self):
        with open(os.path.join(HERE, "sample.csv"), "rb") as sample:
            out = sp.transform(sp.configured(app.Plugin), "text/csv", [sample.read()])
        self.assertEqual(len(out.rows()), 3)
        self.assertEqual([r.reason for r in out.rejected], [
            "ObservedAt is not a date (expected YYYY-MM-DD or M/D/YYYY)",
            "PatientID is missing or Unknown",
        ])


if __name__ == "__main__":
    unittest.main()
