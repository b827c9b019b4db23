//! The `thumbd` binary: parses the command line, builds `Settings`, picks backends and calls
//! the crates' entry points.

mod backends;
mod role;
mod secret;
mod serve_cmd;
mod settings;
mod thumb_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use thumbd_api::Scope;
use thumbd_jobs::Environment;

use secrecy::ExposeSecret as _;

use crate::role::Role;
use crate::settings::{Database, KEYS, Settings, env_var};

/// thumbd: a fast, trustworthy thumbnail service.
#[derive(Parser, Debug)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API and its workers in one process (embedded SQLite queue and store,
    /// files for blobs). Zero configuration needed.
    Serve(ServeArgs),
    /// Run only the HTTP API; jobs go to RabbitMQ (`amqp_url`) for `thumbd worker`
    /// processes. Distributed mode: set `database_url` (PostgreSQL) and a blob store all
    /// processes share.
    Api(ServeArgs),
    /// Run only workers, consuming RabbitMQ (`amqp_url`); serves `/healthz` and `/readyz`
    /// on `listen` for probes.
    Worker(ServeArgs),
    /// Mint a JWT signed with the configured (or data-dir) HS256 secret.
    Token(TokenArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(ConfigArgs),
    /// Make thumbnails of local files and folders (PNG/JPEG), in parallel.
    Thumb(thumb_cmd::ThumbArgs),
}

/// Where settings come from besides the environment.
#[derive(Args, Debug, Clone)]
struct ConfigArgs {
    /// TOML file of settings (keys as listed below).
    #[arg(long, env = "THUMBD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. `--set workers=4` (repeatable; beats file and environment).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// API address (setting `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Data directory (setting `data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Jobs processed at once (setting `workers`).
    #[arg(long, value_name = "N")]
    workers: Option<String>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Scope to grant: thumbnails:read, thumbnails:write or webhooks:manage (repeatable).
    #[arg(long = "scope", required = true, value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Limit the token to one environment.
    #[arg(long, value_parser = parse_environment)]
    environment: Option<Environment>,
    /// Lifetime: e.g. 3600s, 90m, 12h, 30d.
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    ttl: Duration,
    /// The `sub` claim (the client's name; rate limits and idempotency keys are per subject).
    #[arg(long, default_value = "thumbd-cli")]
    subject: String,
    /// The tenant whose data the token reaches (claim `tenant_claim`); default: the tenant
    /// `default`.
    #[arg(long, value_parser = parse_tenant)]
    tenant: Option<thumbd_jobs::Tenant>,
    /// Data directory (setting `data_dir`), where the generated secret lives.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Create the data directory's secret if it has none (else a missing secret is an
    /// error: a token signed with a new secret would not work with a server using another).
    #[arg(long)]
    init: bool,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    match s {
        "thumbnails:read" => Ok(Scope::Read),
        "thumbnails:write" => Ok(Scope::Write),
        "webhooks:manage" => Ok(Scope::Webhooks),
        _ => Err("use thumbnails:read, thumbnails:write or webhooks:manage".into()),
    }
}

fn parse_tenant(s: &str) -> Result<thumbd_jobs::Tenant, String> {
    thumbd_jobs::Tenant::parse(s).map_err(|e| e.to_string())
}

fn parse_environment(s: &str) -> Result<Environment, String> {
    Environment::parse(s).map_err(|e| e.to_string())
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30d, 12h, 90m"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

fn settings_help() -> String {
    let mut out = String::from("Settings (TOML key / environment variable, default):\n");
    out.push_str(&format!(
        "  (secrets from files: {})\n",
        crate::settings::FILE_KEYS
            .iter()
            .map(|k| format!("{}_FILE", env_var(k)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for k in KEYS {
        let default = if k.default.is_empty() {
            "unset"
        } else {
            k.default
        };
        out.push_str(&format!(
            "  {:<22} {:<30} [{default}]\n      {}\n",
            k.name,
            env_var(k.name),
            k.help
        ));
    }
    out
}

fn load_settings(
    config: &ConfigArgs,
    flags: &[(&str, Option<&String>)],
) -> anyhow::Result<Settings> {
    let mut pairs = Vec::new();
    for set in &config.set {
        let (k, v) = set
            .split_once('=')
            .with_context(|| format!("--set {set:?}: expected KEY=VALUE"))?;
        pairs.push((k.trim().to_owned(), v.to_owned()));
    }
    for (k, v) in flags {
        if let Some(v) = v {
            pairs.push(((*k).to_owned(), (*v).clone()));
        }
    }
    Settings::load(config.config.as_deref(), std::env::vars(), &pairs)
        .map_err(|errors| anyhow::anyhow!("invalid settings:\n  {}", errors.join("\n  ")))
}

fn init_logging(json: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        // One flat object per line: `timestamp`, `level`, `message`, the event's fields and
        // its spans' (`request_id`, `route`, `tenant`, `job_id`), each key once.
        registry
            .with(tracing_flat_json::FlatJsonLayer::new(std::io::stderr))
            .init();
    } else {
        // Colour only for a person at a terminal: escape codes in a log file are noise.
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        registry.with(layer).init();
    }
}

/// The async runtime: `threads` workers, or tokio's default (one per core) when `None`.
fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn main() -> ExitCode {
    // Every command that reads settings lists them (`--help`).
    let help = settings_help();
    let command = ["serve", "api", "worker", "token", "migrate"]
        .into_iter()
        .fold(
            Cli::command().after_long_help(help.clone()),
            |command, name| command.mut_subcommand(name, |sub| sub.after_long_help(help.clone())),
        );
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Thumb(args) => thumb_cmd::run(args),
        Command::Serve(args) => run_role(&args, Role::Serve),
        Command::Api(args) => run_role(&args, Role::Api),
        Command::Worker(args) => run_role(&args, Role::Worker),
        Command::Token(args) => token(args).map(|()| ExitCode::SUCCESS),
        Command::Migrate(config) => migrate(&config).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_role(args: &ServeArgs, role: Role) -> anyhow::Result<ExitCode> {
    let settings = load_settings(
        &args.config,
        &[
            ("listen", args.listen.as_ref()),
            ("data_dir", args.data_dir.as_ref()),
            ("workers", args.workers.as_ref()),
        ],
    )?;
    init_logging(settings.log_json);
    runtime(Some(settings.async_threads_for(role)))?.block_on(serve_cmd::run(settings, role))?;
    Ok(ExitCode::SUCCESS)
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.config, &[("data_dir", args.data_dir.as_ref())])?;
    if settings.jwt_public_key.is_some() {
        anyhow::bail!(
            "tokens for a public key (jwt_public_key) are minted by whoever holds the private key, not by thumbd"
        );
    }
    let secret = match &settings.jwt_secret {
        Some(s) => s.clone(),
        None if args.init => secret::load_or_create(&settings.data_dir)?,
        None => secret::load(&settings.data_dir)?,
    };
    let mut claims =
        thumbd_api::Claims::new(&args.subject, &args.scopes, args.environment, args.ttl);
    claims.iss = settings.jwt_issuer.clone();
    claims.aud = settings.jwt_audience.clone().map(Into::into);
    if let Some(tenant) = &args.tenant {
        claims
            .other
            .insert(settings.tenant_claim.clone(), tenant.as_str().into());
    }
    let token = thumbd_api::mint_hs256_claims(&secret, &claims);
    println!("{token}");
    Ok(())
}

fn migrate(config: &ConfigArgs) -> anyhow::Result<()> {
    let settings = load_settings(config, &[])?;
    init_logging(settings.log_json);
    runtime(None)?.block_on(async {
        match &settings.database {
            Database::Sqlite(path) => {
                // Opening migrates.
                let db = thumbd_jobs::SqliteDb::open(path).await?;
                let applied = db.migrated_at_open();
                db.close().await;
                println!(
                    "database {} is up to date ({applied} migrations applied)",
                    path.display()
                );
            }
            Database::Postgres(url) => {
                // Connecting migrates.
                let store = thumbd_postgres::PgMetaStore::connect(url.expose_secret()).await?;
                let applied = store.migrated_at_connect();
                store.close().await;
                println!(
                    "database {} is up to date ({applied} migrations applied)",
                    thumbd_jobs::redact(url.expose_secret())
                );
            }
        }
        anyhow::Ok(())
    })
}
