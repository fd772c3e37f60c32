// synthea-observations: Synthea's observations.csv (vital signs, labs, surveys; LOINC codes) into
// one table. Synthea writes no quotes (a comma inside a value becomes two spaces) and UTC
// timestamps with a `Z`; yearly QALY/DALY/QOLS rows have no encounter and no category.
import * as sp from "../../sdk-js/sluice-plugin.js";
import project from "./package.json" with { type: "json" };

const KINDS = new Set(["numeric", "text"]);

export const plugin = {
  name: project.name,
  version: project.version,
  doc: "Synthea observations (CSV export).",
  table: "observations",
  tableDoc: "One observation of one patient.",
  key: "PATIENT",
  fields: [
    sp.field("DATE", sp.TIMESTAMP, { nullable: false, doc: "When it was observed (UTC)." }),
    sp.field("PATIENT", sp.STRING, { nullable: false, doc: "The patient (a UUID)." }),
    sp.field("ENCOUNTER", sp.STRING, { doc: "The encounter (a UUID); empty for yearly QALY/DALY/QOLS." }),
    sp.field("CATEGORY", sp.STRING, { doc: "vital-signs, laboratory, survey, ..." }),
    sp.field("CODE", sp.STRING, { nullable: false, doc: "The observation's code (LOINC, mostly)." }),
    sp.field("DESCRIPTION", sp.STRING, { doc: "What the code means." }),
    sp.field("VALUE", sp.STRING, { doc: "The value as exported." }),
    sp.field("UNITS", sp.STRING, { doc: "Unit of a numeric value (UCUM)." }),
    sp.field("TYPE", sp.STRING, { nullable: false, doc: "numeric or text." }),
  ],
  check(row) {
    if (!KINDS.has(row.TYPE)) throw new sp.Reject("TYPE is not numeric or text", "TYPE");
    if (row.TYPE === "numeric" && !Number.isFinite(Number(row.VALUE))) {
      throw new sp.Reject("VALUE is not a number though TYPE is numeric", "VALUE");
    }
  },
};

export const source = sp.exportPlugin(plugin);
