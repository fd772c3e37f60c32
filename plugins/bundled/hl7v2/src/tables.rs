//! The five tables: their columns in the order [`crate::map`] fills them. The four clinical
//! tables are shared with every clinical format (names are FHIR's, in snake_case).

use sluice_plugin_sdk::{Column, ColumnType, TableSchema};

/// Index of `message` in [`schemas`].
pub const MESSAGE: usize = 0;
/// Index of `patient`.
pub const PATIENT: usize = 1;
/// Index of `encounter`.
pub const ENCOUNTER: usize = 2;
/// Index of `observation`.
pub const OBSERVATION: usize = 3;
/// Index of `condition`.
pub const CONDITION: usize = 4;

fn table(name: &str, doc: &str, columns: Vec<Column>) -> TableSchema {
    TableSchema { name: name.into(), doc: doc.into(), columns }
}

const PRECISION: &str = "How much of the value was sent: year, month, day, hour, minute, second or fraction; the \
                         value is the start of that period.";

/// Every table, in the order of the index constants.
pub fn schemas() -> Vec<TableSchema> {
    use ColumnType::{Boolean, Date, Float64, Instant, String};
    let col = Column::new;
    let precision = |name: &str| col(name, String, PRECISION);
    let message_id = || col("source_message_id", String, "MSH-10 of the message the row came from.").required();
    // A control id is unique only within its sender: these two, with `source_message_id`, name
    // the message (its row in `message`).
    let sender = || {
        [
            col("sending_application", String, "MSH-3.1 of the message the row came from."),
            col("sending_facility", String, "MSH-4.1 of the message the row came from."),
        ]
    };
    vec![
        table(
            "message",
            "One row per accepted HL7 v2 message, mapped or not.",
            vec![
                col("message_control_id", String, "MSH-10: the sender's id of the message.").required(),
                col("message_type", String, "MSH-9.1 (ADT, ORU, ...).").required(),
                col("trigger_event", String, "MSH-9.2 (A01, R01, ...)."),
                col("message_structure", String, "MSH-9.3 (ADT_A01, ...)."),
                col("sending_application", String, "MSH-3.1."),
                col("sending_facility", String, "MSH-4.1."),
                col("receiving_application", String, "MSH-5.1."),
                col("receiving_facility", String, "MSH-6.1."),
                col("message_time", Instant, "MSH-7: when the message was created."),
                precision("message_time_precision"),
                col("version", String, "MSH-12: the HL7 version (2.3 to 2.8).").required(),
                col("processing_id", String, "MSH-11: P production, T training, D debugging."),
                col("patient_id", String, "PID-3's first identifier, when the message has a PID."),
                col(
                    "mapped",
                    Boolean,
                    "Whether the message's content went into the clinical tables (ADT A01/A02/A03/A04/A08/A11/A13, \
                     ORU R01); other types are kept here only.",
                )
                .required(),
            ],
        ),
        table(
            "patient",
            "One row per patient group (PID) of a mapped message: the patient as that message describes them.",
            vec![
                col("patient_id", String, "PID-3: ID of the first identifier.").required(),
                col("identifier_system", String, "PID-3: its assigning authority."),
                col("identifier_type", String, "PID-3: its identifier type code (MR, SS, ...)."),
                col("family_name", String, "PID-5.1: family name of the first name."),
                col("given_name", String, "PID-5.2: given name."),
                col("birth_date", Date, "PID-7: date of birth (a partial value is the start of its period)."),
                precision("birth_date_precision"),
                col("gender", String, "PID-8 as FHIR administrative-gender: male, female, other or unknown."),
                col("deceased", Boolean, "PID-30, else true when PID-29 gives a time of death."),
                col("deceased_time", Instant, "PID-29: time of death."),
                col("marital_status", String, "PID-16.1: marital status code."),
                col("language", String, "PID-15.1: primary language code."),
                col("postal_code", String, "PID-11.5: postal code of the first address."),
                message_id(),
            ]
            .into_iter()
            .chain(sender())
            .collect(),
        ),
        table(
            "encounter",
            "One row per patient group of a mapped message with a PV1: the visit as that message describes it.",
            vec![
                col("encounter_id", String, "PV1-19: visit number."),
                col("patient_id", String, "PID-3 of the row's patient group.").required(),
                col("class", String, "PV1-2 as FHIR v3 ActCode (E EMER, I IMP, O AMB, P PRENC); other codes as sent."),
                col("status", String, "cancelled (A11), finished (A03, or an end time is known), else in-progress.")
                    .required(),
                col("start_time", Instant, "PV1-44: admit time."),
                precision("start_time_precision"),
                col("end_time", Instant, "PV1-45: discharge time."),
                precision("end_time_precision"),
                col(
                    "location",
                    String,
                    "PV1-3: assigned location, its components joined by ^ (point of care^room^bed^facility...).",
                ),
                message_id(),
            ]
            .into_iter()
            .chain(sender())
            .collect(),
        ),
        table(
            "observation",
            "One row per OBX of a mapped message: lab results, vital signs, notes.",
            vec![
                col(
                    "observation_id",
                    String,
                    "MSH-10, `-OBX-` and the OBX's position: the same message gives the same ids (unique with the sender's two columns).",
                )
                .required(),
                col("patient_id", String, "PID-3 of the row's patient group.").required(),
                col("encounter_id", String, "PV1-19 of the row's patient group."),
                col(
                    "order_id",
                    String,
                    "Filler order number (OBR-3, else placer OBR-2; ORC-3/ORC-2) of the OBX's order.",
                ),
                col("status", String, "OBX-11: result status (F final, P preliminary, C corrected, ...)."),
                col("code", String, "OBX-3.1: observation identifier."),
                col("code_system", String, "OBX-3.3: its coding system (LN for LOINC, ...)."),
                col("code_display", String, "OBX-3.2: its text."),
                col("value_type", String, "OBX-2: value type (NM, SN, ST, TX, CWE, ...)."),
                col("value_numeric", Float64, "OBX-5 as a number, when OBX-2 is NM, SN or empty and it is one."),
                col(
                    "value_text",
                    String,
                    "OBX-5 as sent (components joined by ^; an SN's parts run together, >100; repetitions on lines of their own).",
                ),
                col("value_unit", String, "OBX-6.1 (else 6.2): units."),
                col("reference_range", String, "OBX-7: reference range as sent."),
                col("interpretation", String, "OBX-8.1: abnormal flag (H, L, N, A, ...)."),
                col("effective_time", Instant, "OBX-14, else OBR-7 of its order."),
                precision("effective_time_precision"),
                message_id(),
            ]
            .into_iter()
            .chain(sender())
            .collect(),
        ),
        table(
            "condition",
            "One row per DG1 of a mapped message: diagnoses.",
            vec![
                col("condition_id", String, "MSH-10, `-DG1-` and the DG1's position.").required(),
                col("patient_id", String, "PID-3 of the row's patient group.").required(),
                col("encounter_id", String, "PV1-19 of the row's patient group."),
                col("code", String, "DG1-3.1: diagnosis code."),
                col("code_system", String, "DG1-3.3: its coding system (I10, ...)."),
                col("code_display", String, "DG1-3.2, else DG1-4: its text."),
                col("diagnosis_type", String, "DG1-6: A admitting, W working, F final."),
                col("recorded_time", Instant, "DG1-5: diagnosis time."),
                precision("recorded_time_precision"),
                message_id(),
            ]
            .into_iter()
            .chain(sender())
            .collect(),
        ),
    ]
}
