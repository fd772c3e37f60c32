//! `sluice users`, `sluice grants`, `sluice tokens`: administration of the auth store.

use std::io::BufRead;

use anyhow::{Context, bail};
use sluice_auth::AuthStore;

use crate::cli::{Format, GrantsCommand, PasswordArgs, TokensCommand, UsersCommand};
use crate::paths::Paths;

/// The auth store: the shared PostgreSQL one when `SLUICE__AUTH__URL` names it (with
/// `SLUICE__AUTH__PASSWORD_FILE` if set), else the data directory's SQLite file (created when
/// missing).
fn open(paths: &Paths) -> anyhow::Result<AuthStore> {
    open_store(paths, true)
}

/// The auth store as [`open`] finds it; when `create` is false, a missing SQLite file is an
/// error instead of a new store.
pub(super) fn open_store(paths: &Paths, create: bool) -> anyhow::Result<AuthStore> {
    let path = paths.auth_db();
    let policy = crate::config::Config::load(None)?.auth;
    let place = if policy.url.0.is_empty() { path.display().to_string() } else { policy.url.redacted() };
    let new = policy.url.0.is_empty() && !path.exists();
    if new && !create {
        bail!(
            "there is no auth store at {place}: pass the --data-dir of the `sluice serve` whose audit log to read \
             (or set SLUICE__AUTH__URL for a shared store)"
        );
    }
    let store =
        AuthStore::open_configured(&path, policy).with_context(|| format!("cannot open the auth database {place}"))?;
    if new {
        // Run from another directory than the server's, this would change nothing it sees.
        eprintln!(
            "note: there was no auth store at {place}; a new one was created. A running `sluice serve` uses the one \
             in its own data directory: pass the same --data-dir to manage its users"
        );
    }
    Ok(store)
}

/// Whether this process has a controlling terminal to prompt on (rpassword reads `/dev/tty`).
fn has_terminal() -> bool {
    if cfg!(unix) {
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
    } else {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal()
    }
}

/// Reads a password from standard input (first line) or from a prompt, asked twice.
fn read_password(args: &PasswordArgs, user: &str) -> anyhow::Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    if !has_terminal() {
        bail!(
            "no terminal to ask for the password of {user}: pass it on standard input with --password-stdin \
             (e.g. `printf '%s\\n' \"$PASSWORD\" | sluice users add {user} --password-stdin`)"
        );
    }
    let first = rpassword::prompt_password(format!("password for {user}: ")).context("cannot read the password")?;
    let second = rpassword::prompt_password("again: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Runs a `users` subcommand.
pub fn users(paths: &Paths, command: UsersCommand) -> anyhow::Result<()> {
    let store = open(paths)?;
    match command {
        UsersCommand::Add { name, password } => {
            let password = read_password(&password, &name)?;
            store.add_user(&name, &password)?;
            println!("user {name} added; grant sources with: sluice grants add {name} SOURCE");
        }
        UsersCommand::List { format } => {
            let users = store.list_users()?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&users)?),
                Format::Table => {
                    for user in users {
                        let lock = user.locked_until.map(|t| format!("  (locked until {t})")).unwrap_or_default();
                        println!("{}  sources: {}{lock}", user.name, user.sources.join(", "));
                    }
                }
            }
        }
        UsersCommand::Remove { name } => {
            store.remove_user(&name)?;
            println!("user {name} removed");
        }
        UsersCommand::Passwd { name, password } => {
            let password = read_password(&password, &name)?;
            store.set_password(&name, &password)?;
            println!("password of {name} changed");
        }
        UsersCommand::ImportSeed { file } => {
            let report = store.import_seed(&file)?;
            println!("imported {} user(s), {} grant(s)", report.users.len(), report.grants.len());
            for skipped in report.skipped {
                println!("skipped {skipped}: the user exists already");
            }
        }
    }
    Ok(())
}

/// Runs a `grants` subcommand.
pub fn grants(paths: &Paths, command: GrantsCommand) -> anyhow::Result<()> {
    let store = open(paths)?;
    match command {
        GrantsCommand::Add { user, source } => {
            store.grant(&user, &source)?;
            println!("{user} may post to {source}");
            if let Some(known) = known_sources(paths).filter(|known| !known.contains(&source)) {
                // Not refused: a plugin dropped in later (or a [sources] binding) may bring it.
                eprintln!(
                    "warning: no source `{source}` is loaded now (sources: {}); the grant takes effect once a \
                     plugin or [sources] binding of that name exists",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                );
            }
        }
        GrantsCommand::Remove { user, source } => {
            store.revoke_grant(&user, &source)?;
            println!("{user} may no longer post to {source}");
        }
        GrantsCommand::List { user } => {
            for grant in store.list_grants(user.as_deref())? {
                println!("{}\t{}", grant.user, grant.source);
            }
        }
    }
    Ok(())
}

/// The sources sluice would serve now (bundled and dropped-in plugins, `[sources]` bindings), or
/// `None` when they cannot be loaded here (that is `serve`'s to report, not an admin command's).
fn known_sources(paths: &Paths) -> Option<Vec<String>> {
    let config = crate::config::Config::load(None).ok()?;
    let assembly = crate::assembly::Assembly::new(paths, config);
    Some(assembly.loaded_sources().ok()?.names())
}

/// Runs a `tokens` subcommand.
pub fn tokens(paths: &Paths, command: TokensCommand) -> anyhow::Result<()> {
    let store = open(paths)?;
    match command {
        TokensCommand::Create { user, label, expires_in } => {
            if expires_in.is_some_and(|d| d.is_zero()) {
                bail!("--expires-in must be longer than 0s: such a token would be expired when created");
            }
            let expires_at = expires_in
                .map(|d| chrono::TimeDelta::from_std(d).ok().and_then(|d| chrono::Utc::now().checked_add_signed(d)))
                .map(|at| at.context("--expires-in is too long (past the year 262143)"))
                .transpose()?;
            let token = store.create_token(&user, &label, expires_at)?;
            eprintln!("token {} created for {user}; it is shown only now:", token.id);
            println!("{}", token.token);
        }
        TokensCommand::List { user } => {
            for token in store.list_tokens(user.as_deref())? {
                let state = match (&token.revoked_at, &token.expires_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("expires {at}"),
                    (None, None) => "no expiry".into(),
                };
                println!("{}\t{}\t{}\t{state}", token.id, token.user, token.label);
            }
        }
        TokensCommand::Revoke { id } => {
            store.revoke_token(&id)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
