//! The idgate command line: a thin shim over the library.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand, ValueEnum};
use idgate::{
    app::App,
    auth::keys::{KeyState, KeyStore},
    clock::SystemClock,
    config::Settings,
    db,
    domain::{Email, Password, Role},
    import::{self, ImportOptions, read::Format},
    services::Services,
};
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "idgate", version, about = "Self-hosted identity server with a GraphQL API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Create a superuser. The password comes from IDGATE_SUPERUSER_PASSWORD, from stdin with
    /// --password-stdin, or from a prompt; never from the command line.
    CreateSuperuser {
        #[arg(long)]
        email: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Raise an existing account to superuser instead of refusing it.
        #[arg(long)]
        promote: bool,
    },
    /// Manage the stored access-token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Import the users of a Django project: the JSON of `manage.py dumpdata auth.user`, or a
    /// CSV with its columns. All or nothing; accounts that exist (by email) are left alone.
    ImportUsers {
        /// The export to read.
        file: PathBuf,
        /// Check the file and report what would be imported, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// The file's format [default: from its extension].
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// The role of Django staff (`is_staff`) who are not superusers.
        #[arg(long, value_enum, default_value_t = StaffRole::Admin)]
        staff_role: StaffRole,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportFormat {
    Json,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum StaffRole {
    Admin,
    User,
}

#[derive(Subcommand)]
enum KeysAction {
    /// List the keys and where each stands.
    List,
    /// Make a new signing key: published at once, it signs after IDGATE_KEY_REFRESH_SECS; the
    /// old key stays published until its tokens have expired.
    Rotate,
    /// Unpublish a key that no longer signs: tokens it signed stop verifying.
    Retire { kid: String },
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Read before the settings, so that their own errors are logged in the chosen format.
    if std::env::var("IDGATE_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_current_span(true).with_span_list(false).with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    let outcome = if let Command::Schema = command {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", idgate::schema::sdl());
        }
        Ok(())
    } else {
        // The settings size the runtime, so they are read before it exists.
        Settings::from_env().map_err(|e| e.to_string()).and_then(|settings| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(settings.request_threads())
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?
                .block_on(run(command, settings))
        })
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("idgate: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve => {
            let app = App::build(settings.clone()).await.map_err(describe)?;
            tracing::info!(
                address = %settings.listen,
                graphiql = %format!("http://{}/graphql", settings.listen),
                "idgate is serving"
            );
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }
        Command::Migrate => {
            db::migrate(&db::resolve_url(settings.database_url.expose_secret()).await).await.map_err(describe)?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateSuperuser { email, password_stdin, promote } => {
            let email = Email::parse(&email).map_err(describe)?;
            let password = read_password(password_stdin)?;
            let password = Password::parse(password, "password").map_err(describe)?;
            let services = Services::build(&settings, std::sync::Arc::new(SystemClock)).await.map_err(describe)?;
            let user = services.accounts.create_superuser(email, password, promote).await.map_err(|e| match e {
                idgate::error::AppError::Conflict { .. } => {
                    "that email already has an account; pass --promote to make it a superuser".to_owned()
                }
                other => describe(other),
            })?;
            tracing::info!(id = %user.id, "superuser ready");
            Ok(())
        }
        Command::Keys { action } => manage_keys(&settings, action).await,
        Command::ImportUsers { file, dry_run, format, staff_role } => {
            let format = match format {
                Some(ImportFormat::Json) => Format::Json,
                Some(ImportFormat::Csv) => Format::Csv,
                None => Format::from_file_name(&file.to_string_lossy())
                    .ok_or("cannot tell the format from the file name: pass --format json or --format csv")?,
            };
            let staff_role = match staff_role {
                StaffRole::Admin => Role::Admin,
                StaffRole::User => Role::User,
            };
            import_users(&settings, &file, format, ImportOptions { dry_run, staff_role }).await
        }
        Command::Schema => Ok(()),
    }
}

async fn manage_keys(settings: &Settings, action: KeysAction) -> Result<(), String> {
    let url = &db::resolve_url(settings.database_url.expose_secret()).await;
    db::migrate(url).await.map_err(describe)?;
    let connection = db::connect(url, 2).await.map_err(describe)?;
    let store = KeyStore::open(&connection, settings, &SystemClock).await.map_err(describe)?;
    let now = chrono::Utc::now();
    #[allow(clippy::print_stdout)]
    match action {
        KeysAction::List => {
            println!("{:<18} {:>3}  {:<25} state", "kid", "seq", "created");
            for (key, state) in store.list(now).await.map_err(describe)? {
                let state = match state {
                    KeyState::Pending { signs_from } => format!("published, signs from {}", signs_from.to_rfc3339()),
                    KeyState::Signing => "signing".to_owned(),
                    KeyState::Verifying { until } => format!("verifying until {}", until.to_rfc3339()),
                    KeyState::Expired => "expired (unpublished)".to_owned(),
                    KeyState::Retired => "retired".to_owned(),
                };
                println!("{:<18} {:>3}  {:<25} {state}", key.id, key.sequence, key.created_at.to_rfc3339(),);
            }
        }
        KeysAction::Rotate => {
            let key = store.rotate(now).await.map_err(describe)?;
            let signs_from =
                key.created_at + chrono::Duration::seconds(settings.key_refresh_secs.try_into().unwrap_or(i64::MAX));
            println!("{} published; it signs from {}", key.id, signs_from.to_rfc3339());
        }
        KeysAction::Retire { kid } => {
            store.retire(&kid, now).await.map_err(describe)?;
            println!("{kid} retired; instances drop it within {} s", settings.key_refresh_secs);
        }
    }
    Ok(())
}

async fn import_users(settings: &Settings, file: &Path, format: Format, options: ImportOptions) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let rows = import::read::read(&text, format).map_err(|e| format!("{}: {}", file.display(), describe(e)))?;
    let url = &db::resolve_url(settings.database_url.expose_secret()).await;
    db::migrate(url).await.map_err(describe)?;
    let connection = db::connect(url, 2).await.map_err(describe)?;
    let report = import::run(&connection, rows, options, chrono::Utc::now()).await.map_err(|e| match e {
        idgate::error::AppError::Conflict { field } => {
            format!(
                "an account with one of the file's {field}s was created meanwhile; nothing was imported: run it again"
            )
        }
        other => format!("nothing was imported: {}", describe(other)),
    })?;
    #[allow(clippy::print_stdout)]
    {
        println!("{report}");
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    if let Ok(password) = std::env::var("IDGATE_SUPERUSER_PASSWORD") {
        return Ok(password);
    }
    if from_stdin {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).map_err(|e| e.to_string())?;
        return Ok(input.trim_end_matches(['\r', '\n']).to_owned());
    }
    rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))
}

/// The message of an error for the operator, including an internal error's cause.
fn describe(error: idgate::error::AppError) -> String {
    match error {
        idgate::error::AppError::Internal(source) | idgate::error::AppError::Unavailable(source) => source.to_string(),
        idgate::error::AppError::BadUserInput { field, message } => format!("{field} {message}"),
        other => other.to_string(),
    }
}
