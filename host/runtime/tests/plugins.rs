//! The bundled plugins, run as Wasm, against the same code run natively.

mod common;

use sluice_plugin_sdk::{OwnedBatch, Plugin as _, Records, Settings};
use sluice_runtime::{
    Batch, BatchBuilder, CallError, Cell, ColumnType, PluginEngine, PluginRegistry, Source, SourceError,
};

const PATIENTS: &str = r#"{"PatientID": "FB2ABB23-C9D0-4D09-8464-49BF0B982F0F", "PatientGender": "Male", "PatientDateOfBirth": "1947-12-28 02:45:40.547", "PatientRace": "Unknown", "PatientMaritalStatus": "Married", "PatientLanguage": "Icelandic", "PatientPopulationPercentageBelowPoverty": 18.08}"#;

fn registry(engine: &PluginEngine) -> PluginRegistry {
    PluginRegistry::open(engine, None, &common::bundled()).unwrap()
}

/// The patients plugin, natively, with default settings.
fn native_patients() -> Records<patients::Patients> {
    Records::<patients::Patients>::configure(
        &Settings::new(&Records::<patients::Patients>::manifest().settings, &[]).unwrap(),
    )
    .unwrap()
}

/// Every cell of the Wasm table equals the native one.
fn assert_same_cells(wasm: &sluice_runtime::TableRows, native: &sluice_plugin_sdk::TableBuilder) {
    for (wasm_column, native_column) in wasm.columns.iter().zip(&native.columns) {
        for row in 0..wasm.len() {
            let native_cell = match native_column.get(row) {
                sluice_plugin_sdk::Value::Null => Cell::Null,
                sluice_plugin_sdk::Value::String(s) => Cell::String(s),
                sluice_plugin_sdk::Value::Timestamp(t) => Cell::Timestamp(t),
                sluice_plugin_sdk::Value::Float64(f) => Cell::Float(f),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(wasm_column.cell(row), native_cell, "row {row}");
        }
    }
}

#[test]
fn bundled_plugins_describe_the_seed_tables_with_real_types() {
    let engine = common::engine(Default::default());
    let registry = registry(&engine);
    let names: Vec<String> = registry.list().iter().map(|p| p.id()).collect();
    assert_eq!(names, vec!["admissions@0.1.0", "hl7v2@0.1.0", "lab_results@0.1.0", "patients@0.1.0"]);
    let patients = registry.get("patients").unwrap();
    let table = patients.manifest().table("patients").unwrap();
    let types: Vec<(&str, ColumnType, bool)> =
        table.columns.iter().map(|c| (c.name.as_str(), c.column_type, c.nullable)).collect();
    assert_eq!(
        types,
        vec![
            ("patientid", ColumnType::String, false),
            ("patientgender", ColumnType::String, true),
            ("patientdateofbirth", ColumnType::Timestamp, true),
            ("patientrace", ColumnType::String, true),
            ("patientmaritalstatus", ColumnType::String, true),
            ("patientlanguage", ColumnType::String, true),
            ("patientpopulationpercentagebelowpoverty", ColumnType::Float64, true),
        ]
    );
    assert_eq!(patients.manifest().settings[0].name, "drop-unknown");
    assert_eq!(patients.contract(), "0.2.0");
    assert_eq!(patients.digest().len(), 64);
}

#[test]
fn wasm_output_equals_native_output() {
    let engine = common::engine(Default::default());
    let source = Source::from_registry(&registry(&engine), "patients", Vec::new()).unwrap();
    let body = format!("[{PATIENTS}, {{\"PatientGender\": \"F\"}}, {PATIENTS}]");
    let wasm = source.transform(&Batch::single("application/json", body.as_bytes())).unwrap().output;

    let native_plugin = native_patients();
    let native = native_plugin.transform(&OwnedBatch::single("application/json", body.as_bytes()).as_batch());

    let wasm_table = wasm.table("patients").unwrap();
    let native_table = native.table("patients").unwrap();
    assert_eq!(wasm_table.len(), 2);
    assert_eq!(wasm_table.inputs, native_table.inputs);
    assert_same_cells(wasm_table, native_table);
    let reasons: Vec<(u32, &str)> = wasm.rejected.iter().map(|r| (r.record, r.reason.as_str())).collect();
    assert_eq!(reasons, vec![(1, "PatientID is missing or Unknown")]);
    assert_eq!(wasm.rejected[0].field.as_deref(), Some("PatientID"));
    assert_eq!(native.rejected.len(), 1);
}

/// The plugin SDK scans strings 16 bytes at a time with Wasm SIMD in the plugin and with SSE2
/// natively: both must stop at the same quote, escape, control or non-ASCII byte, in every
/// position of a step, including the overlapping last step at the end of a payload.
#[test]
fn wasm_and_native_read_every_string_alike() {
    let engine = common::engine(Default::default());
    let source = Source::from_registry(&registry(&engine), "patients", Vec::new()).unwrap();
    let specials = ["é", "患", "\\\"", "\\\\", "\\u00e9", "\\n", "\t", "\u{1}"];
    let mut payloads = Vec::new();
    for length in 0..40 {
        for at in 0..length {
            for special in specials {
                let value: String =
                    (0..length).map(|i| if i == at { special.to_string() } else { "x".into() }).collect();
                // The special value last, so that the payload ends within a step of it.
                payloads.push(format!(r#"{{"PatientID": "p-{length}-{at}", "PatientGender": "{value}"}}"#));
                payloads.push(format!(r#"{{"PatientGender":"{value}","PatientID":"q"}}"#));
            }
        }
        payloads.push(format!(r#"{{"PatientID":"{}"}}"#, "y".repeat(length)));
    }
    let mut wasm_batch = BatchBuilder::new("application/json");
    let mut native_batch = OwnedBatch::new("application/json");
    for payload in &payloads {
        wasm_batch.push(payload.as_bytes());
        native_batch.push(payload.as_bytes());
    }
    let wasm = source.transform(&wasm_batch.finish()).unwrap().output;
    let native_plugin = native_patients();
    let native = native_plugin.transform(&native_batch.as_batch());

    let (wasm_table, native_table) = (wasm.table("patients").unwrap(), native.table("patients").unwrap());
    let rejected = |rejections: &[sluice_plugin_sdk::Rejection]| -> Vec<(u32, String)> {
        rejections.iter().map(|r| (r.input, r.reason.clone())).collect()
    };
    let wasm_rejected: Vec<(u32, String)> = wasm.rejected.iter().map(|r| (r.input, r.reason.clone())).collect();
    assert_eq!(wasm_rejected, rejected(&native.rejected));
    // Control characters inside strings are malformed JSON: those payloads are rejected.
    assert!(wasm_rejected.iter().any(|(_, reason)| reason.starts_with("malformed JSON")));
    assert_eq!(wasm_table.len() + wasm_rejected.len(), payloads.len());
    assert_eq!(wasm_table.inputs, native_table.inputs);
    assert_same_cells(wasm_table, native_table);
    // The escapes were read as escapes, by both.
    let genders = &native_table.columns[1];
    assert!((0..native_table.len()).any(|row| genders.get(row) == sluice_plugin_sdk::Value::String("xx\"x")));
}

#[test]
fn split_then_transform_round_trips_through_the_canonical_form() {
    let engine = common::engine(Default::default());
    let source = Source::from_registry(&registry(&engine), "lab_results", Vec::new()).unwrap();
    let body = "PatientID\tAdmissionID\tLabName\tLabValue\tLabUnits\tLabDateTime\r\n\
                p1\t1\tCBC: HEMOGLOBIN\t13.2\tgm/dl\t1992-07-01 01:36:17.910\r\n\
                p2\tx\tCBC: HEMOGLOBIN\t13.2\tgm/dl\t1992-07-01 01:36:17.910\r\n";
    let split = source.split(&Batch::single("text/tab-separated-values", body.as_bytes())).unwrap().output;
    assert_eq!(split.records.len(), 1);
    assert_eq!(split.origins[0].key.as_deref(), Some("p1"));
    assert_eq!(split.rejected[0].reason, "AdmissionID is not an integer");
    let rows = source.transform(&split.records).unwrap().output;
    let table = rows.table("lab_results").unwrap();
    assert_eq!(table.columns[3].cell(0), Cell::Float(13.2));
    assert_eq!(table.columns[1].cell(0), Cell::Integer(1));
}

#[test]
fn settings_are_checked_when_the_source_is_built() {
    let engine = common::engine(Default::default());
    let registry = registry(&engine);
    let unknown = Source::from_registry(&registry, "patients", vec![("colour".into(), "red".into())]);
    assert!(matches!(
        unknown,
        Err(SourceError::Call(CallError::Configure { ref message, .. })) if message == "unknown setting `colour` (known settings: drop-unknown)"
    ));
    let bad = Source::from_registry(&registry, "patients", vec![("drop-unknown".into(), "maybe".into())]);
    match bad {
        Err(error) => assert_eq!(
            error.to_string(),
            "plugin patients@0.1.0 rejected its settings: setting `drop-unknown` must be true or false, not `maybe`"
        ),
        Ok(_) => panic!("bad value accepted"),
    }
    let filtered = Source::from_registry(&registry, "patients", vec![("drop-unknown".into(), "true".into())]).unwrap();
    let out = filtered.transform(&Batch::single("application/json", PATIENTS.as_bytes())).unwrap().output;
    assert_eq!(out.rejected[0].reason, "dropped by setting drop-unknown: PatientRace is unknown");
}

#[test]
fn an_unsupported_content_type_is_refused_before_the_call() {
    let engine = common::engine(Default::default());
    let source = Source::from_registry(&registry(&engine), "admissions", Vec::new()).unwrap();
    let error = source.transform(&Batch::single("application/xml", b"<a/>")).unwrap_err();
    assert!(
        error.to_string().starts_with("plugin admissions@0.1.0 does not accept content type `application/xml`"),
        "{error}"
    );
}

#[test]
fn instances_are_reused_across_batches() {
    let engine = common::engine(Default::default());
    let source = Source::from_registry(&registry(&engine), "patients", Vec::new()).unwrap();
    let mut builder = BatchBuilder::new("application/json");
    for _ in 0..1000 {
        builder.push(PATIENTS.as_bytes());
    }
    let batch = builder.finish();
    for _ in 0..20 {
        let out = source.transform(&batch).unwrap().output;
        assert_eq!(out.table("patients").unwrap().len(), 1000);
    }
}

#[test]
fn compiled_code_is_cached_on_disk_by_digest() {
    let cache = tempfile::tempdir().unwrap();
    let first = PluginEngine::new(Default::default(), Some(cache.path().to_path_buf())).unwrap();
    assert!(!common::load_bundled(&first, "admissions.wasm").from_cache());
    let second = PluginEngine::new(Default::default(), Some(cache.path().to_path_buf())).unwrap();
    let plugin = common::load_bundled(&second, "admissions.wasm");
    assert!(plugin.from_cache());
    let entries: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].starts_with(plugin.digest()), "{entries:?}");
}

#[test]
fn compiled_code_of_plugins_no_longer_loaded_is_deleted_an_hour_after_its_last_use() {
    let (cache, plugins) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = PluginEngine::new(Default::default(), Some(cache.path().to_path_buf())).unwrap();
    let install = |from: &str| {
        let hidden = plugins.path().join(".swap.wasm.partial");
        std::fs::copy(from, &hidden).unwrap();
        std::fs::rename(&hidden, plugins.path().join("swap.wasm")).unwrap();
    };
    let names = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let age = |name: &str, by: std::time::Duration| {
        let file = std::fs::File::options().write(true).open(cache.path().join(name)).unwrap();
        file.set_modified(std::time::SystemTime::now() - by).unwrap();
    };
    let hour = sluice_runtime::UNUSED_CODE_KEPT_FOR;
    install(sluice_test_plugins::SWAP_V1);
    let registry = PluginRegistry::open(&engine, Some(plugins.path()), &[]).unwrap();
    let v1 = registry.get("swap").unwrap();
    let v1_code = names().into_iter().find(|n| n.starts_with(v1.digest())).expect("v1 compiled into the cache");
    let engine_hash = v1_code.trim_start_matches(v1.digest());

    // What a crash, an older sluice and a plugin removed long ago left, and another process's
    // fresh code; besides a file that is not the cache's.
    let stale = [format!("{}{engine_hash}", "a".repeat(64)), format!("{}-0123456789abcdef.cwasm", "b".repeat(64))];
    let partial = format!("{}.partial-4242", v1_code.trim_end_matches(".cwasm"));
    let fresh = format!("{}{engine_hash}", "c".repeat(64));
    for name in stale.iter().chain([&partial, &fresh, &"notes.txt".to_string()]) {
        std::fs::write(cache.path().join(name), b"x").unwrap();
    }
    for name in stale.iter().chain([&partial, &"notes.txt".to_string(), &v1_code]) {
        age(name, hour * 2);
    }
    // A registry that is not a server's (an admin command's) leaves the cache alone.
    registry.rescan().unwrap();
    assert_eq!(names().len(), 6, "{:?}", names());
    registry.watch().unwrap();
    let expected: std::collections::BTreeSet<String> =
        [v1_code.clone(), fresh.clone(), "notes.txt".to_string()].into_iter().collect();
    assert_eq!(names(), expected, "the loaded plugin's code, fresh code and other files stay");

    // A new version: the old code stays for an hour after it was last used, then goes; the new
    // one stays. (The loaded code was marked in use just now.)
    let modified = |name: &str| std::fs::metadata(cache.path().join(name)).unwrap().modified().unwrap();
    assert!(modified(&v1_code).elapsed().unwrap() < hour, "the loaded code is marked in use");
    install(sluice_test_plugins::SWAP_V2);
    registry.rescan().unwrap();
    let v2 = registry.get("swap").unwrap();
    assert_ne!(v2.digest(), v1.digest());
    let v2_code = names().into_iter().find(|n| n.starts_with(v2.digest())).expect("v2 compiled into the cache");
    age(&v1_code, hour - std::time::Duration::from_secs(60));
    registry.rescan().unwrap();
    assert!(names().contains(&v1_code), "kept within the hour");
    age(&v1_code, hour);
    age(&v2_code, hour * 2);
    registry.rescan().unwrap();
    let expected: std::collections::BTreeSet<String> = [v2_code, fresh, "notes.txt".to_string()].into_iter().collect();
    assert_eq!(names(), expected, "the old version's code went, the loaded one's stayed however old");
}
