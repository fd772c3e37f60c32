//! `sluice plugin list`, `sluice plugin check` and `sluice plugin wit`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use sluice_runtime::{Plugin, PluginEngine, Source};

use crate::assembly::Assembly;
use crate::cli::{CheckArgs, Format, PluginCommand};
use crate::config::Config;
use crate::paths::Paths;
use crate::render;

/// The plugins' stages of the configuration the environment gives (`SLUICE__PLUGINS__*`).
fn assembly(paths: &Paths) -> anyhow::Result<Assembly<'_>> {
    Ok(Assembly::new(paths, Config::load(None)?))
}

/// Runs a `plugin` subcommand.
pub fn run(paths: &Paths, command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::List { format } => list(paths, format),
        PluginCommand::Check(args) => check(paths, args),
        PluginCommand::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = crate::scaffold::new_project(&name, lang, &dir)?;
            println!("wrote {} files to {}:", files.len(), dir.display());
            let mut files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            files.sort();
            for file in files.iter().filter(|f| !f.starts_with("sluice-sdk/")) {
                println!("  {file}");
            }
            println!(
                "next: cd {} && ./build, then copy {name}.wasm into the plugin directory (see README.md there)",
                dir.display()
            );
            Ok(())
        }
        PluginCommand::Wit { version } => {
            print!("{}", contract_wit(version.as_deref())?);
            Ok(())
        }
    }
}

/// The WIT text of contract `version` (the newest when none is named).
pub fn contract_wit(version: Option<&str>) -> anyhow::Result<&'static str> {
    let contracts = sluice_runtime::CONTRACT_WIT;
    let found = match version {
        None => contracts.last(),
        Some(version) => contracts.iter().find(|(v, _)| *v == version),
    };
    match found {
        Some((_, text)) => Ok(text),
        None => bail!(
            "this sluice has no plugin contract {}; it supports {}",
            version.unwrap_or_default(),
            sluice_runtime::SUPPORTED_CONTRACTS.join(", ")
        ),
    }
}

fn list(paths: &Paths, format: Format) -> anyhow::Result<()> {
    let assembly = assembly(paths)?;
    let mut plugins = assembly.registry(&assembly.engine()?)?.list();
    // What a server on this data directory would run: not a plugin its warehouse refuses.
    let admit = warehouse_admission(&assembly)?;
    plugins.retain(|plugin| match admit(plugin) {
        Ok(()) => true,
        Err(error) => {
            eprintln!("warning: {} not loaded: {}", plugin.origin(), crate::one_message(&error));
            false
        }
    });
    match format {
        Format::Table => print!("{}", render::list_text(&plugins)),
        Format::Json => {
            let list: Vec<_> = plugins.iter().map(|p| render::manifest_json(p)).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}

fn resolve(assembly: &Assembly, engine: &PluginEngine, name_or_path: &str) -> anyhow::Result<Arc<Plugin>> {
    let path = Path::new(name_or_path);
    if path.extension().is_some_and(|e| e == "wasm") || path.components().count() > 1 {
        return Ok(Arc::new(Plugin::load_file(engine, path)?));
    }
    let registry = assembly.registry(engine)?;
    registry.get(name_or_path).with_context(|| {
        let names: Vec<String> = registry.list().iter().map(|p| p.manifest().name.clone()).collect();
        format!("no plugin named `{name_or_path}` is loaded (loaded: {})", names.join(", "))
    })
}

fn check(paths: &Paths, args: CheckArgs) -> anyhow::Result<()> {
    let assembly = assembly(paths)?;
    let engine = assembly.engine()?;
    let plugin = resolve(&assembly, &engine, &args.plugin)?;
    if matches!(plugin.origin(), sluice_runtime::PluginOrigin::File(_)) {
        check_against_the_warehouse(&assembly, &plugin)?;
        check_against_the_loaded(&assembly, &engine, &plugin)?;
    }
    let source = Source::new(plugin.clone(), args.settings.clone())?;
    let Some(input) = &args.input else {
        match args.format {
            Format::Table => print!("{}", render::manifest_text(&plugin)),
            Format::Json => println!("{}", serde_json::to_string_pretty(&render::manifest_json(&plugin))?),
        }
        return Ok(());
    };
    let body = read_input(input)?;
    let content_type = match &args.content_type {
        Some(content_type) => content_type.clone(),
        None => guess_content_type(input)?,
    };
    let Some(read_as) = plugin.manifest().reads(&sluice_runtime::essence(&content_type)) else {
        bail!(
            "plugin {} does not accept content type `{}` (it accepts: {})",
            plugin.id(),
            sluice_runtime::essence(&content_type),
            plugin.manifest().content_types.join(", ")
        );
    };
    let run = crate::check::run(&source, read_as, &body)?;
    match args.format {
        Format::Table => print!("{}", render::check_text(&plugin, &run)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&render::check_json(&plugin, &run))?),
    }
    if !run.refused.is_empty() {
        bail!(
            "{} record(s) that split accepted were refused by transform: the API would answer 202 for them and the \
             stream would then dead-letter them (make split refuse them, or transform accept them)",
            run.refused.len()
        );
    }
    Ok(())
}

/// Refuses a plugin file the server on this data directory would not load because of its
/// warehouse (a table whose files the plugin's schema cannot follow, a `partition_by` its table
/// cannot use), with the reason the server would give, before it is dropped in.
fn check_against_the_warehouse(assembly: &Assembly, plugin: &Plugin) -> anyhow::Result<()> {
    warehouse_admission(assembly)?(plugin)
}

/// The check a server on this data directory makes of a plugin against its warehouse (see
/// [`check_against_the_warehouse`]), opened once for many plugins. Reads only: no warehouse is
/// created when there is none, and nothing is written to one.
fn warehouse_admission(assembly: &Assembly) -> anyhow::Result<impl Fn(&Plugin) -> anyhow::Result<()>> {
    let url = assembly.warehouse_url()?;
    let exists = url.strip_prefix("file://").is_none_or(|dir| Path::new(dir).is_dir());
    let warehouse = exists.then(|| assembly.warehouse()).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let layout = assembly.config().warehouse.clone();
    Ok(move |plugin: &Plugin| {
        let Some(warehouse) = &warehouse else { return Ok(()) };
        let schemas = sluice_stream::TableSchemas::default();
        if let Err(reason) = runtime.block_on(crate::admission::admit(plugin, warehouse, &schemas, &layout)) {
            bail!("the server on this data directory would not load plugin {}: {reason}", plugin.id());
        }
        Ok(())
    })
}

/// Refuses a plugin file the server on this data directory would not load beside the plugin
/// files it loads (another file writing one of its tables with columns the two cannot share; a
/// bundled plugin in that case steps aside for the file instead).
fn check_against_the_loaded(assembly: &Assembly, engine: &PluginEngine, plugin: &Plugin) -> anyhow::Result<()> {
    let loaded = assembly.registry(engine)?.list();
    let mut files = loaded.iter().filter(|other| matches!(other.origin(), sluice_runtime::PluginOrigin::File(_)));
    if let Some(reason) = files.find_map(|other| sluice_runtime::table_conflict(plugin, other)) {
        bail!("the server on this data directory would not load plugin {}: {reason}", plugin.id());
    }
    Ok(())
}

fn read_input(input: &Path) -> anyhow::Result<Vec<u8>> {
    if input == Path::new("-") {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).context("cannot read standard input")?;
        return Ok(body);
    }
    std::fs::read(input).with_context(|| format!("cannot read input file {}", input.display()))
}

/// The content type implied by a file's extension.
fn guess_content_type(input: &Path) -> anyhow::Result<String> {
    let extension = input.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    Ok(match extension.as_deref() {
        Some("json") => "application/json",
        Some("ndjson" | "jsonl") => "application/x-ndjson",
        Some("csv") => "text/csv",
        Some("tsv" | "tab") => "text/tab-separated-values",
        Some("txt") => "text/plain",
        Some("hl7" | "er7") => "application/hl7-v2",
        _ if input == Path::new("-") => "text/plain",
        _ => bail!("cannot tell the content type of {} from its extension; pass --content-type", input.display()),
    }
    .to_string())
}
