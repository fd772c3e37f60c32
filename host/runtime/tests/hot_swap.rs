//! The plugin directory is watched: new, changed and deleted files take effect while batches
//! flow, and a bad file leaves the others running.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use sluice_runtime::{BatchBuilder, Cell, PluginRegistry, RegistryEvent, Source};
use sluice_test_plugins as testing;

/// Upper bound on waiting for the watcher; a test fails rather than hangs.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies `from` into `dir/name` the way operators should: write aside, then rename.
fn install(from: &str, dir: &Path, name: &str) {
    let hidden = dir.join(format!(".{name}.partial"));
    std::fs::copy(from, &hidden).unwrap();
    std::fs::rename(&hidden, dir.join(name)).unwrap();
}

fn wait_for(events: &Receiver<RegistryEvent>, wanted: impl Fn(&RegistryEvent) -> bool) -> RegistryEvent {
    loop {
        let event = events.recv_timeout(EVENT_TIMEOUT).expect("registry event in time");
        if wanted(&event) {
            return event;
        }
    }
}

#[test]
fn replacing_a_plugin_while_batches_flow_loses_no_batch_and_the_new_version_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    install(testing::SWAP_V1, dir.path(), "swap.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &[]).unwrap();
    registry.watch().unwrap();
    let events = registry.subscribe();
    let source = Arc::new(Source::from_registry(&registry, "swap", Vec::new()).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (source, stop) = (source.clone(), stop.clone());
        thread::spawn(move || {
            let mut versions = Vec::new();
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) || versions.last().is_none_or(|v| v != "2.0.0") {
                let mut batch = BatchBuilder::new("text/plain");
                for i in 0..10 {
                    batch.push(format!("{}", sent + i).as_bytes());
                }
                let handled = source.transform(&batch.finish()).expect("no batch fails during the swap");
                let table = handled.output.table("handled").unwrap();
                assert_eq!(table.len(), 10, "every payload of the batch is handled");
                for row in 0..10 {
                    assert_eq!(table.columns[0].cell(row), Cell::String(&(sent + row as u64).to_string()));
                }
                let Cell::String(version) = table.columns[1].cell(0) else { panic!("version column") };
                assert_eq!(version, handled.plugin.manifest().version);
                versions.push(version.to_string());
                sent += 10;
            }
            versions
        })
    };

    install(testing::SWAP_V2, dir.path(), "swap.wasm");
    let loaded = wait_for(&events, |e| matches!(e, RegistryEvent::Loaded { .. }));
    assert!(
        matches!(loaded, RegistryEvent::Loaded { ref name, ref version, .. } if name == "swap" && version == "2.0.0")
    );
    stop.store(true, Ordering::SeqCst);
    let versions = worker.join().expect("worker saw no failure");
    let switch = versions.iter().position(|v| v == "2.0.0").expect("the new version took over");
    assert!(versions[..switch].iter().all(|v| v == "1.0.0"), "{versions:?}");
    assert!(versions[switch..].iter().all(|v| v == "2.0.0"), "{versions:?}");

    std::fs::remove_file(dir.path().join("swap.wasm")).unwrap();
    wait_for(&events, |e| matches!(e, RegistryEvent::Unloaded { name } if name == "swap"));
    assert!(registry.get("swap").is_none());
    assert!(source.transform(&BatchBuilder::new("text/plain").finish()).is_err());
}

/// An operator who moves the plugin directory aside and makes a new one (`mv plugins
/// plugins.old; mkdir plugins`) has the new one watched: its files load without a restart.
#[test]
fn a_plugin_directory_moved_aside_and_made_again_is_watched_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    install(testing::SWAP_V1, &dir, "swap.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(&dir), &common::bundled()).unwrap();
    registry.watch().unwrap();
    let events = registry.subscribe();
    std::fs::rename(&dir, root.path().join("plugins.old")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    // The new, empty directory is read: what only the old one held is unloaded.
    wait_for(&events, |e| matches!(e, RegistryEvent::Unloaded { name } if name == "swap"));
    // A file dropped into it later loads (no event of the old directory's watch reports it).
    install(testing::SWAP_V2, &dir, "swap.wasm");
    wait_for(&events, |e| matches!(e, RegistryEvent::Loaded { name, .. } if name == "swap"));
    assert_eq!(registry.get("swap").unwrap().manifest().version, "2.0.0");
}

#[test]
fn a_bad_file_is_reported_and_the_others_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    install(testing::SWAP_V1, dir.path(), "swap.wasm");
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm garbage").unwrap();
    install(testing::CUSTOM_IMPORT, dir.path(), "custom.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &common::bundled()).unwrap();
    let names: Vec<String> = registry.list().iter().map(|p| p.manifest().name.clone()).collect();
    assert_eq!(names, vec!["admissions", "hl7v2", "lab_results", "patients", "swap"]);
    let failures = registry.failures();
    let failed: Vec<String> =
        failures.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(failed, vec!["broken.wasm", "custom.wasm"]);
    assert!(failures[0].1.contains("is not a valid WebAssembly component"), "{}", failures[0].1);
    assert!(failures[1].1.contains("which sluice does not grant to plugins"), "{}", failures[1].1);

    // A broken replacement keeps the working version loaded.
    registry.watch().unwrap();
    let events = registry.subscribe();
    let hidden = dir.path().join(".swap.partial");
    std::fs::write(&hidden, b"\0asm still garbage").unwrap();
    std::fs::rename(&hidden, dir.path().join("swap.wasm")).unwrap();
    wait_for(&events, |e| matches!(e, RegistryEvent::Failed { path, .. } if path.ends_with("swap.wasm")));
    assert_eq!(registry.get("swap").unwrap().manifest().version, "1.0.0");

    // A file over `plugins.max_wasm` (64 MiB; sparse here) is reported as it arrives too.
    let hidden = dir.path().join(".big.partial");
    std::fs::File::create(&hidden).unwrap().set_len(65 << 20).unwrap();
    std::fs::rename(&hidden, dir.path().join("big.wasm")).unwrap();
    wait_for(&events, |e| matches!(e, RegistryEvent::Failed { path, .. } if path.ends_with("big.wasm")));
    let failures = registry.failures();
    let big = failures.iter().find(|(p, _)| p.ends_with("big.wasm")).expect("listed among the failures");
    assert!(big.1.contains("68157440"), "{}", big.1);
}

#[test]
fn a_file_in_the_directory_overrides_the_bundled_plugin_of_the_same_name_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &common::bundled()).unwrap();
    assert!(matches!(registry.get("patients").unwrap().origin(), sluice_runtime::PluginOrigin::Bundled(_)));
    let own = dir.path().join("my-patients.wasm");
    std::fs::copy(format!("{}/patients.wasm", sluice_plugin_artifacts::PLUGINS_DIR), &own).unwrap();
    registry.rescan().unwrap();
    assert_eq!(registry.get("patients").unwrap().origin(), &sluice_runtime::PluginOrigin::File(own.clone()));
    std::fs::remove_file(&own).unwrap();
    registry.rescan().unwrap();
    assert!(matches!(registry.get("patients").unwrap().origin(), sluice_runtime::PluginOrigin::Bundled(_)));
}

/// A bundled plugin coming back in place of a deleted file is admitted as any new version is:
/// refused (its table no longer fits what the file's version wrote), the file's version keeps
/// running and the refusal is listed; admitted later, it returns.
#[test]
fn a_bundled_plugin_the_host_does_not_admit_does_not_return_when_its_override_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(Default::default());
    let own = dir.path().join("my-patients.wasm");
    std::fs::copy(format!("{}/patients.wasm", sluice_plugin_artifacts::PLUGINS_DIR), &own).unwrap();
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &common::bundled()).unwrap();
    let refuse_bundled = Arc::new(AtomicBool::new(true));
    let refusing = refuse_bundled.clone();
    registry.set_admission(Arc::new(move |plugin: &sluice_runtime::Plugin| match plugin.origin() {
        sluice_runtime::PluginOrigin::Bundled(_) if refusing.load(Ordering::SeqCst) => {
            Err("table `patients`: incompatible schema change: column `age` changed from Int32 to Utf8".into())
        }
        _ => Ok(()),
    }));
    std::fs::remove_file(&own).unwrap();
    registry.rescan().unwrap();
    assert_eq!(registry.get("patients").unwrap().origin(), &sluice_runtime::PluginOrigin::File(own.clone()));
    assert_eq!(
        registry.failures(),
        vec![(
            std::path::PathBuf::from("bundled:patients.wasm"),
            "plugin bundled:patients.wasm was not loaded: table `patients`: incompatible schema change: column `age` \
             changed from Int32 to Utf8"
                .to_string()
        )]
    );

    refuse_bundled.store(false, Ordering::SeqCst);
    registry.rescan().unwrap();
    assert!(matches!(registry.get("patients").unwrap().origin(), sluice_runtime::PluginOrigin::Bundled(_)));
    assert!(registry.failures().is_empty());
}

#[test]
fn a_version_the_host_does_not_admit_leaves_the_running_one_live_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    install(testing::SWAP_V1, dir.path(), "swap.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &[]).unwrap();
    registry.set_admission(Arc::new(|plugin: &sluice_runtime::Plugin| {
        if plugin.manifest().version == "2.0.0" {
            Err("table `handled`: incompatible schema change: column `version` changed from Utf8 to Int64".into())
        } else {
            Ok(())
        }
    }));
    install(testing::SWAP_V2, dir.path(), "swap.wasm");
    registry.rescan().unwrap();
    assert_eq!(registry.get("swap").unwrap().manifest().version, "1.0.0", "the running version stays");
    let failures = registry.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].1,
        format!(
            "plugin {} was not loaded: table `handled`: incompatible schema change: column `version` changed from Utf8 to Int64",
            dir.path().join("swap.wasm").display()
        )
    );
}

/// Two plugins of different names declaring one table: compatible declarations both load; a
/// plugin whose columns the other's rows cannot share is refused, whichever was dropped in
/// later (the one running keeps running), and loads once the other is gone.
#[test]
fn a_plugin_declaring_a_table_another_writes_with_columns_they_cannot_share_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    install(testing::POISON, dir.path(), "poison.wasm");
    install(testing::DROPS_RECORDS, dir.path(), "drops-records.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &[]).unwrap();
    assert!(registry.get("poison").is_some() && registry.get("drops-records").is_some(), "one shape, both load");
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());

    install(testing::RIVAL, dir.path(), "a-rival.wasm");
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_none(), "refused, though its file sorts first");
    assert!(registry.get("poison").is_some() && registry.get("drops-records").is_some());
    let failures = registry.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, dir.path().join("a-rival.wasm"));
    let reason = &failures[0].1;
    assert!(
        reason.starts_with(&format!(
            "plugin {} was not loaded: table `events` is also written by plugin ",
            dir.path().join("a-rival.wasm").display()
        )) && reason.ends_with("and the two cannot share it: column `value` is int64 here and string there"),
        "{reason}"
    );

    // At start, too: the first by name is kept.
    let again = PluginRegistry::open(&engine, Some(dir.path()), &[]).unwrap();
    assert!(again.get("rival").is_none() && again.get("drops-records").is_some() && again.get("poison").is_some());

    std::fs::remove_file(dir.path().join("poison.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("drops-records.wasm")).unwrap();
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_some(), "admitted once no plugin writes `events` otherwise");
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());

    install(testing::POISON, dir.path(), "poison.wasm");
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_some(), "the one running keeps running");
    assert!(registry.get("poison").is_none());
    assert_eq!(registry.failures().len(), 1);
}

/// A version held back by a table conflict never ran: once its file holds something that does
/// not load, it is not what the file provides when the conflict goes away.
#[test]
fn a_version_held_back_by_a_table_conflict_does_not_run_after_its_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    install(testing::POISON, dir.path(), "poison.wasm");
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &[]).unwrap();
    install(testing::RIVAL, dir.path(), "rival.wasm");
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_none());

    std::fs::write(dir.path().join(".broken"), b"not a component").unwrap();
    std::fs::rename(dir.path().join(".broken"), dir.path().join("rival.wasm")).unwrap();
    registry.rescan().unwrap();
    std::fs::remove_file(dir.path().join("poison.wasm")).unwrap();
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_none(), "the bytes that held it are gone");
    let failures = registry.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(!failures[0].1.contains("cannot share"), "the file's own failure is listed: {}", failures[0].1);
}

/// A bundled plugin writing a table a plugin file declares in another shape steps aside for the
/// file (as it does for a file of its own name) and returns when the file is removed.
#[test]
fn a_bundled_plugin_steps_aside_for_a_file_declaring_its_table_in_another_shape() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(Default::default());
    let registry = PluginRegistry::open(&engine, Some(dir.path()), &common::bundled()).unwrap();
    assert!(registry.get("patients").is_some());
    install(testing::RIVAL, dir.path(), "rival.wasm");
    registry.rescan().unwrap();
    assert!(registry.get("rival").is_some(), "the file decides the table");
    assert!(registry.get("patients").is_none(), "the bundled plugin is set aside");
    assert!(registry.get("admissions").is_some(), "the others stay");
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());

    let again = PluginRegistry::open(&engine, Some(dir.path()), &common::bundled()).unwrap();
    assert!(again.get("rival").is_some() && again.get("patients").is_none(), "at start too");

    std::fs::remove_file(dir.path().join("rival.wasm")).unwrap();
    registry.rescan().unwrap();
    assert!(matches!(registry.get("patients").unwrap().origin(), sluice_runtime::PluginOrigin::Bundled(_)));
}
