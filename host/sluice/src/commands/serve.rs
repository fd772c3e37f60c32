//! `sluice serve`: the API over the plugins, the auth store and the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_api::ApiState;
use sluice_auth::AuthStore;
use sluice_log::RecordLog;
use sluice_warehouse::Warehouse;

use crate::assembly::Assembly;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::paths::Paths;
use crate::permissions;

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(paths: &Paths, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let address = config.listen_address()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(serve(paths, config, address))
}

async fn serve(paths: &Paths, config: Config, address: SocketAddr) -> anyhow::Result<()> {
    // Bound before anything starts, so that a taken port is the one line the operator sees.
    let listener = std::net::TcpListener::bind(address).map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {address}: {error} (is another sluice running? choose another address with \
             --listen or server.listen)"
        )
    })?;
    let mut mllp_listeners = Vec::new();
    for mllp in &config.mllp {
        let address = mllp.listen_address()?;
        let listener = std::net::TcpListener::bind(address).map_err(|error| {
            anyhow::anyhow!("cannot listen for MLLP on {address}: {error} (choose another address in mllp.listen)")
        })?;
        if !address.ip().is_loopback() && mllp.tls_cert.is_none() {
            tracing::warn!(%address, "plain MLLP on a non-loopback address (allow_plain_remote = true)");
            eprintln!("warning: plain MLLP on {address}; HL7 messages cross the network unencrypted");
        }
        // A certificate or key that cannot be used is one line now, not a failure per connection.
        mllp.tls().context("invalid configuration")?;
        mllp_listeners.push((listener, mllp.clone()));
    }
    std::fs::create_dir_all(paths.data_dir())
        .with_context(|| format!("cannot create the data directory {}", paths.data_dir().display()))?;
    let assembly = Assembly::new(paths, config);
    let _lock = crate::data_lock::DataDirLock::acquire(
        paths.data_dir(),
        &assembly.serve_lock_name(),
        assembly.serve_lock_scope(),
    )?;
    for warning in permissions::wider_than_private(paths.data_dir()) {
        tracing::warn!(%warning, "data directory permissions");
        eprintln!("warning: {warning}");
    }
    let config = assembly.config();
    let plugins_dir = assembly.plugins_dir();
    let engine = assembly.engine()?;
    let registry = assembly.watched_registry(&engine)?;
    let sources = assembly.sources(registry.clone())?;
    // Blocking (SQLite or PostgreSQL): off the async threads, as every store call below.
    let (auth_db, policy) = (paths.auth_db(), config.auth.clone());
    let auth = Arc::new(tokio::task::spawn_blocking(move || AuthStore::open_configured(&auth_db, policy)).await??);
    let spool_was_there = paths.spool().exists();
    let stream_log = assembly.log().await?;
    let log: Arc<dyn RecordLog> = stream_log.clone();
    let warehouse_url = assembly.warehouse_url()?;
    if config.warehouse.group_readable {
        // After the auth store and the spool are open: only what is created from here on
        // (warehouse files and directories) is shared with the group.
        permissions::group_readable();
    }
    let warehouse = assembly.warehouse()?;
    if config.log.kind == sluice_log::LogKind::Spool
        && !spool_was_there
        && let Err(refusal) = check_no_warehouse_without_spool(&registry, &warehouse, &paths.spool()).await
    {
        // Leave the data directory as it was: no new, empty spool beside the warehouse.
        drop((stream_log, log));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", paths.spool().display()));
        }
        return Err(refusal);
    }
    check_partitioning(&registry, &config.warehouse)?;
    check_loaded_against_the_warehouse(&registry, &warehouse, &config.warehouse).await?;
    let schemas = sluice_stream::TableSchemas::default();
    registry.set_admission(crate::admission::schema_admission(
        warehouse.clone(),
        schemas.clone(),
        config.warehouse.clone(),
    ));
    // What can still fail is checked before the stream starts: a failure after it would leave its
    // tasks retrying on a closing runtime, their warnings burying the reason.
    for (listener, mllp) in &mllp_listeners {
        check_mllp_source(&sources, mllp, listener.local_addr()?)?;
    }
    let server_tls = match config.server.tls_cert.as_ref().zip(config.server.tls_key.as_ref()) {
        None => None,
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(sluice_api::RustlsConfig::from_pem_file(cert, key).await.with_context(|| {
                format!("cannot load the TLS certificate {} and key {}", cert.display(), key.display())
            })?)
        }
    };
    let stream = assembly.start_stream(stream_log, warehouse.clone(), sources.clone(), schemas);
    assembly.start_catalog(&sources, warehouse, &stream, auth.clone())?;
    let limits = config.server.limits();
    let log_kind = log.kind();
    let mut state = ApiState::new(sources.clone(), auth.clone(), log, limits);
    // The state installed the metrics recorder: the gauges of the plugins loaded so far.
    registry.publish_metrics();
    if config.log.min_free.as_u64() > 0 {
        state = state.with_disk_guard(sluice_api::DiskGuard::new(paths.data_dir(), config.log.min_free.as_u64()));
    }
    // Fault injection for the crash tests of retries (tests/README.md); never set otherwise.
    if let Some(ms) = std::env::var("SLUICE_FAULT_ANSWER_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        tracing::warn!(ms, "fault injection: every answer is held after its records are durable");
        state = state.with_answer_delay(Duration::from_millis(ms));
    }

    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let tls = config.server.tls_cert.as_ref().zip(config.server.tls_key.as_ref());
    let scheme = if tls.is_some() { "https" } else { "http" };
    if tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(%local, "serving plain HTTP on a non-loopback address: configure server.tls_cert and server.tls_key");
        eprintln!("warning: serving plain HTTP on {local}; credentials and records cross the network unencrypted");
    }
    // Status lines go to stdout; a closed stdout (a supervisor that stopped reading) must not
    // stop the server, so write errors are ignored.
    let mut banner = format!(
        "sluice listening on {scheme}://{local}\ndata directory {}, plugins from {}\nlog: {}, warehouse: {}, catalog: {}\nsources: {}\n",
        paths.data_dir().display(),
        plugins_dir.display(),
        log_kind,
        sluice_config::without_password(&warehouse_url),
        if !config.catalog.enabled() {
            "off".to_string()
        } else {
            format!("Trino at {}", sluice_config::without_password(&config.catalog.trino_url))
        },
        sources.names().join(", ")
    );
    for (listener, mllp) in &mllp_listeners {
        let who = match &mllp.user {
            Some(user) => format!("as user {user}"),
            None => "as the users its client certificates name".to_string(),
        };
        let tls = if mllp.tls_cert.is_some() { " over TLS" } else { "" };
        banner.push_str(&format!("MLLP on {}{tls} for source {} {who}\n", listener.local_addr()?, mllp.source));
        let grants = match mllp.user.clone() {
            Some(user) => {
                let store = auth.clone();
                Some(tokio::task::spawn_blocking(move || store.list_grants(Some(&user))).await?)
            }
            None => None,
        };
        let granted = grants
            .as_ref()
            .is_none_or(|grants| grants.as_ref().is_ok_and(|grants| grants.iter().any(|g| g.source == mllp.source)));
        if let (Some(user), Some(Err(sluice_auth::Error::NoSuchUser(_)))) = (&mllp.user, &grants) {
            banner.push_str(&format!(
                "warning: MLLP user {user} does not exist: every message gets AR until `sluice users add {user}` and \
                 `sluice grants add {user} {}`\n",
                mllp.source
            ));
        } else if let Some(user) = &mllp.user
            && !granted
        {
            banner.push_str(&format!(
                "warning: MLLP user {user} may not post to {}: every message gets AR until `sluice grants add {user} {}`\n",
                mllp.source, mllp.source
            ));
        }
    }
    let store = auth.clone();
    if tokio::task::spawn_blocking(move || store.list_users()).await??.is_empty() {
        banner.push_str("no users yet: add one with `sluice users add NAME` and `sluice grants add NAME SOURCE`\n");
    }
    say(&banner);

    let tls = server_tls;
    let open_files = crate::open_files::raise_open_file_limit();
    let connection_limits = config.server.connection_limits(open_files);
    tracing::info!(
        open_files,
        max_connections = connection_limits.max_connections,
        per_address = connection_limits.max_connections_per_address,
        "connection limits"
    );
    // One signal stops the HTTP server and every MLLP listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let when_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|&s| s).await;
        }
    };
    let mut mllp_servers = Vec::new();
    for (listener, mllp) in mllp_listeners {
        mllp_servers.push(tokio::spawn(sluice_api::serve_mllp(listener, mllp, state.clone(), when_stopped())));
    }
    sluice_api::serve(listener, tls, state, connection_limits, when_stopped()).await?;
    for server in mllp_servers {
        server.await??;
    }
    // The API has stopped taking records: commit what the stream holds, then stop.
    stream.shutdown().await;
    tokio::task::spawn_blocking(move || auth.flush_audit()).await?;
    say("sluice stopped\n");
    Ok(())
}

/// Refuses to start on a new spool beside a warehouse that already holds tables: the warehouse's
/// file names carry the log positions they cover, and a new spool numbers records from 0 again,
/// so the stream would take the new records for ones already written and skip them. (The
/// spool was deleted, or the data directory lost it.)
async fn check_no_warehouse_without_spool(
    registry: &sluice_runtime::PluginRegistry,
    warehouse: &Warehouse,
    spool: &std::path::Path,
) -> anyhow::Result<()> {
    let mut written = Vec::new();
    for plugin in registry.list() {
        for table in &plugin.manifest().tables {
            if warehouse.written_schema(&table.name).await?.is_some() {
                written.push(table.name.clone());
            }
        }
    }
    if !written.is_empty() {
        written.sort();
        anyhow::bail!(
            "there is no spool at {}, but the warehouse already holds tables written from one ({}): a new spool \
             would number records from 0 again, and the stream would skip them as already written. Restore the \
             spool, or give this server a new warehouse (warehouse.url) or data directory",
            spool.display(),
            written.join(", ")
        );
    }
    Ok(())
}

/// Refuses to start when `[warehouse.tables.NAME] partition_by` names a column a loaded table
/// cannot be partitioned by (its rows would be accepted and never land); warns of a section no
/// loaded plugin's table has (a plugin dropped in later may bring it; a misspelt name is seen).
fn check_partitioning(
    registry: &sluice_runtime::PluginRegistry,
    warehouse: &sluice_warehouse::WarehouseConfig,
) -> anyhow::Result<()> {
    let plugins = registry.list();
    let tables: Vec<&sluice_runtime::TableSchema> = plugins.iter().flat_map(|p| &p.manifest().tables).collect();
    if let Some(fault) = tables.iter().find_map(|table| sluice_stream::partitioning_fault(table, warehouse)) {
        anyhow::bail!("{fault}");
    }
    for name in warehouse.tables.keys().filter(|name| !tables.iter().any(|t| &t.name == *name)) {
        let known: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        tracing::warn!(table = %name, "[warehouse.tables.{name}] names no table a loaded plugin writes");
        eprintln!(
            "warning: [warehouse.tables.{name}] names no table a loaded plugin writes (tables: {}); it takes effect \
             once a plugin with that table is loaded",
            known.join(", ")
        );
    }
    Ok(())
}

/// Refuses to start when a loaded plugin's tables cannot be written beside the warehouse's
/// files (a plugin file changed while sluice was stopped, a warehouse another version wrote):
/// every record for its source would be accepted and then dead-lettered.
async fn check_loaded_against_the_warehouse(
    registry: &sluice_runtime::PluginRegistry,
    warehouse: &Warehouse,
    layout: &sluice_warehouse::WarehouseConfig,
) -> anyhow::Result<()> {
    let schemas = sluice_stream::TableSchemas::default();
    for plugin in registry.list() {
        if let Err(reason) = crate::admission::admit(&plugin, warehouse, &schemas, layout).await {
            let remedy = match plugin.origin() {
                sluice_runtime::PluginOrigin::File(path) => {
                    format!("put back the plugin version that wrote the table, or move {} away", path.display())
                }
                sluice_runtime::PluginOrigin::Bundled(_) => {
                    "drop in the plugin version that wrote the table, or give this server a new warehouse \
                     (warehouse.url)"
                        .to_string()
                }
            };
            anyhow::bail!(
                "plugin {} ({}) cannot write to this warehouse: {reason}; {remedy}",
                plugin.id(),
                plugin.origin()
            );
        }
    }
    Ok(())
}

fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// An `[[mllp]]` listener must feed a source whose plugin reads HL7 v2: anything else would
/// refuse every message, which is a configuration mistake to say at start.
fn check_mllp_source(
    sources: &sluice_api::SourceTable,
    mllp: &sluice_api::MllpConfig,
    address: SocketAddr,
) -> anyhow::Result<()> {
    let Some(source) = sources.get(&mllp.source) else {
        anyhow::bail!(
            "invalid configuration: the MLLP listener on {address} feeds source `{}`, which does not exist (sources: {})",
            mllp.source,
            sources.names().join(", ")
        );
    };
    let plugin = source.plugin().map_err(|error| anyhow::anyhow!("source `{}`: {error}", mllp.source))?;
    if !plugin.manifest().accepts("application/hl7-v2") {
        anyhow::bail!(
            "invalid configuration: the MLLP listener on {address} feeds source `{}`, whose plugin does not read HL7 v2 \
             (it reads {})",
            mllp.source,
            plugin.manifest().content_types.join(", ")
        );
    }
    Ok(())
}
