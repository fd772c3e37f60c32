"""mimic: MIMIC-III's PATIENTS, ADMISSIONS and LABEVENTS CSV files, as exported by PhysioNet, into
three tables. A body goes to the table whose marker column its header has (DOB, ADMITTIME,
ITEMID); one subject's records share a partition key (SUBJECT_ID).

The export's own conventions: quoted headers and strings, bare numbers and timestamps
(`YYYY-MM-DD HH:MM:SS`, shifted into 2100-2200 for de-identification, kept as written), empty
for NULL, flags as 0/1.
"""

import sluice_plugin as sp

NAME, VERSION = sp.project()

ROW_ID = sp.Field("ROW_ID", sp.INT64, nullable=False, doc="The export's row number (a surrogate key).")
SUBJECT_ID = sp.Field("SUBJECT_ID", sp.INT64, nullable=False, doc="The patient.")


def at(source, doc, nullable=True):
    return sp.Field(source, sp.TIMESTAMP, nullable=nullable, doc=doc)


def text(source, doc):
    return sp.Field(source, sp.STRING, doc=doc)


PATIENTS = sp.Table("patients", doc="One patient.", key="SUBJECT_ID", marker="DOB", fields=[
    ROW_ID, SUBJECT_ID,
    sp.Field("GENDER", sp.STRING, nullable=False, doc="M or F."),
    at("DOB", "Date of birth (shifted; about 300 years before the first admission for ages over 89).",
       nullable=False),
    at("DOD", "Date of death, from any source."),
    at("DOD_HOSP", "Date of death recorded by the hospital."),
    at("DOD_SSN", "Date of death from the social security death index."),
    sp.Field("EXPIRE_FLAG", sp.BOOLEAN, nullable=False, doc="Whether the patient died."),
])

ADMISSIONS = sp.Table("admissions", doc="One hospital admission.", key="SUBJECT_ID", marker="ADMITTIME", fields=[
    ROW_ID, SUBJECT_ID,
    sp.Field("HADM_ID", sp.INT64, nullable=False, doc="The admission."),
    at("ADMITTIME", "Admitted at.", nullable=False),
    at("DISCHTIME", "Discharged at."),
    at("DEATHTIME", "Died in hospital at."),
    text("ADMISSION_TYPE", "ELECTIVE, URGENT, NEWBORN or EMERGENCY."),
    text("ADMISSION_LOCATION", "Where the patient came from."),
    text("DISCHARGE_LOCATION", "Where the patient went."),
    text("INSURANCE", "Payer."),
    text("LANGUAGE", "Language spoken."),
    text("RELIGION", "Religion."),
    text("MARITAL_STATUS", "Marital status."),
    text("ETHNICITY", "Ethnicity."),
    at("EDREGTIME", "Registered in the emergency department at."),
    at("EDOUTTIME", "Left the emergency department at."),
    text("DIAGNOSIS", "Preliminary diagnosis, free text."),
    sp.Field("HOSPITAL_EXPIRE_FLAG", sp.BOOLEAN, doc="Whether the patient died in hospital."),
    sp.Field("HAS_CHARTEVENTS_DATA", sp.BOOLEAN, doc="Whether the admission has chart events."),
])

LABEVENTS = sp.Table("labevents", doc="One laboratory result.", key="SUBJECT_ID", marker="ITEMID", fields=[
    ROW_ID, SUBJECT_ID,
    sp.Field("HADM_ID", sp.INT64, doc="The admission; empty for outpatient labs."),
    sp.Field("ITEMID", sp.INT32, nullable=False, doc="The test (D_LABITEMS)."),
    at("CHARTTIME", "When the specimen was charted.", nullable=False),
    text("VALUE", "The result as reported (may be text: NEG, <0.01, >150)."),
    sp.Field("VALUENUM", sp.FLOAT64, doc="The result as a number, when it is one."),
    text("VALUEUOM", "Unit of the result."),
    text("FLAG", "abnormal, delta, or empty."),
])

FLAGS = {None, "abnormal", "delta"}


class Plugin(sp.TablesPlugin):
    name, version = NAME, VERSION
    doc = "MIMIC-III PATIENTS, ADMISSIONS and LABEVENTS (PhysioNet's CSV export)."
    tables = [PATIENTS, ADMISSIONS, LABEVENTS]

    def check(self, table, row):
        if table == "patients" and row["GENDER"] not in ("M", "F"):
            raise sp.Reject("GENDER is not M or F", "GENDER")
        if table == "admissions" and row["DISCHTIME"] is not None and row["DISCHTIME"] < row["ADMITTIME"]:
            raise sp.Reject("DISCHTIME is before ADMITTIME", "DISCHTIME")
        if table == "labevents":
            if row["FLAG"] not in FLAGS:
                raise sp.Reject("FLAG is not abnormal, delta or empty", "FLAG")
            if row["VALUENUM"] is not None and row["VALUE"] is None:
                raise sp.Reject("VALUENUM is set but VALUE is empty", "VALUE")


Source = sp.export(Plugin)
