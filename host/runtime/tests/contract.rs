//! What the host does for every plugin whatever language it is written in, shown with a plugin
//! written against the WIT alone (no SDK): setting defaults filled in before `configure`, and a
//! `split` whose records `transform` would refuse caught at once.

mod common;

use sluice_runtime::{Batch, CallError, Cell, Source, SourceError};
use sluice_test_plugins as testing;

fn settings_seen(source: &Source) -> Vec<String> {
    let out = source.transform(&Batch::single("application/json", b"{}")).unwrap().output;
    let rows = out.table("settings").expect("one row per setting");
    (0..rows.len())
        .map(|row| match rows.columns[0].cell(row) {
            Cell::String(text) => text.to_string(),
            other => panic!("unexpected cell {other:?}"),
        })
        .collect()
}

#[test]
fn the_host_fills_setting_defaults_before_configure() {
    let engine = common::engine(common::tight_config());
    let plugin = common::load(&engine, testing::BARE_CONTRACT);

    let defaults_only = Source::new(plugin.clone(), Vec::new()).unwrap();
    assert_eq!(
        settings_seen(&defaults_only),
        ["canonical-type=application/json", "greeting=hello", "reserve-mib=0", "grow-mib=0"]
    );

    let given = vec![("greeting".to_string(), "hi".to_string()), ("optional".to_string(), "x".to_string())];
    let overridden = Source::new(plugin, given).unwrap();
    assert_eq!(
        settings_seen(&overridden),
        ["greeting=hi", "optional=x", "canonical-type=application/json", "reserve-mib=0", "grow-mib=0"]
    );
}

#[test]
fn split_records_of_an_undeclared_content_type_are_refused() {
    let engine = common::engine(common::tight_config());
    let plugin = common::load(&engine, testing::BARE_CONTRACT);
    let batch = Batch::single("application/json", br#"{"a": 1}"#);

    let declared = Source::new(plugin.clone(), Vec::new()).unwrap();
    assert_eq!(declared.split(&batch).unwrap().output.records.len(), 1);

    let settings = vec![("canonical-type".to_string(), "text/x-undeclared".to_string())];
    let undeclared = Source::new(plugin, settings).unwrap();
    match undeclared.split(&batch) {
        Err(SourceError::Call(error @ CallError::InvalidOutput { .. })) => assert_eq!(
            error.to_string(),
            "plugin bare-contract@0.1.0 returned invalid output: split returned records of content type \
             `text/x-undeclared`, which the manifest does not declare (it declares application/json)"
        ),
        other => panic!("expected invalid output, got {other:?}"),
    }
}

#[test]
fn plugins_built_for_different_contract_versions_run_side_by_side() {
    // bare-contract is built against the frozen 0.1.0 text, the bundled plugins against the
    // newest: one engine loads both, and each transforms its batch.
    let engine = common::engine(common::tight_config());
    let old = common::load(&engine, testing::BARE_CONTRACT);
    let new = common::load_bundled(&engine, "patients.wasm");
    assert_eq!(old.contract(), "0.1.0");
    assert_eq!(new.contract(), *sluice_runtime::SUPPORTED_CONTRACTS.last().unwrap());
    assert_ne!(old.contract(), new.contract());

    let old_source = Source::new(old, Vec::new()).unwrap();
    assert_eq!(settings_seen(&old_source).len(), 4, "the 0.1.0 plugin's rows came back through the newest types");
    let new_source = Source::new(new, Vec::new()).unwrap();
    let body = b"{\"PatientID\": \"P1\", \"PatientGender\": \"Female\"}";
    let out = new_source.transform(&Batch::single("application/json", body)).unwrap().output;
    assert_eq!(out.table("patients").map(|rows| rows.len()), Some(1));
}

#[test]
fn released_contract_versions_are_frozen() {
    // A released version's text never changes (wit/README.md): a change is a new version, its
    // WIT added beside the old ones. SHA-256 of each released text:
    let frozen = [
        ("0.1.0", "f1b3782a9a5f3c73d074567fe8ba4069539401f2aaf50eb9e1bc85aba7b4efc2"),
        ("0.2.0", "6492664bb7541f728e6d31a6704e1affbc23140aa7d1c24710fddc581af8fffa"),
    ];
    let versions: Vec<&str> = sluice_runtime::CONTRACT_WIT.iter().map(|(version, _)| *version).collect();
    assert_eq!(versions, sluice_runtime::SUPPORTED_CONTRACTS, "every supported version has its WIT text");
    for (version, digest) in frozen {
        let (_, text) = sluice_runtime::CONTRACT_WIT.iter().find(|(v, _)| *v == version).expect("a released version");
        assert!(text.contains(&format!("package sluice:plugin@{version};")), "{version}'s text names its version");
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(text.as_bytes())), digest, "released contract {version} changed");
    }
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn an_instance_with_a_large_heap_from_the_start_is_reused_across_batches() {
    // Like a Python plugin, whose interpreter holds tens of MiB before the first batch: the
    // idle-memory rule counts growth since configure, not size.
    let engine = common::engine(sluice_runtime::SandboxConfig::default());
    let source =
        Source::new(common::load(&engine, testing::BARE_CONTRACT), settings(&[("reserve-mib", "48")])).unwrap();
    for _ in 0..5 {
        source.transform(&Batch::single("application/json", b"{}")).unwrap();
    }
    assert_eq!(source.instances_made(), 1, "one instance served every batch");
}

#[test]
fn an_instance_that_grows_past_the_idle_limit_in_its_calls_is_not_kept() {
    let engine = common::engine(sluice_runtime::SandboxConfig::default());
    let source = Source::new(common::load(&engine, testing::BARE_CONTRACT), settings(&[("grow-mib", "40")])).unwrap();
    for _ in 0..3 {
        source.transform(&Batch::single("application/json", b"{}")).unwrap();
    }
    assert_eq!(source.instances_made(), 3, "each instance grew 40 MiB (over 32 MiB) in its call and was dropped");
}

#[test]
fn a_plugin_that_missed_the_brief_split_deadline_is_not_split_inline_again_for_a_while() {
    let engine = common::engine(common::tight_config());
    let source = Source::new(common::load(&engine, testing::ENDLESS_LOOP), Vec::new()).unwrap();
    let batch = Batch::single("application/json", b"{}");
    assert!(source.split_briefly(&batch).unwrap().is_none(), "the brief split ran out of time");
    assert_eq!(source.instances_made(), 1);
    // The interrupted instance was dropped; without the cooldown this would make another one
    // and interrupt it too.
    assert!(source.split_briefly(&batch).unwrap().is_none());
    assert_eq!(source.instances_made(), 1, "the second brief split did not run the plugin");
}
