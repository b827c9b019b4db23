//! The one list of settings ([`KEYS`]): the loader, `--help` and the README's table come
//! from it.

/// One setting: its key (TOML, and `THUMBD_<KEY>` upper-cased), default and meaning.
pub struct Key {
    /// TOML key; the environment variable is `THUMBD_` + this upper-cased.
    pub name: &'static str,
    /// The default, as text (empty: unset).
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every setting, in the order the README documents them.
pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        default: "127.0.0.1:8080",
        help: "API address",
    },
    Key {
        name: "data_dir",
        default: "./thumbd-data",
        help: "where the embedded backends keep their files",
    },
    Key {
        name: "database_url",
        default: "",
        help: "metadata store: unset = SQLite file `thumbd.db` in the data dir, `sqlite://PATH`, or `postgres://user:pass@host/db` (distributed mode)",
    },
    Key {
        name: "amqp_url",
        default: "",
        help: "unset = embedded queue (in the SQLite file); `amqp://user:pass@host:5672/vhost` = RabbitMQ (distributed mode)",
    },
    Key {
        name: "amqp_namespace",
        default: "thumbd",
        help: "prefix of the RabbitMQ exchange and queue names (`thumbd` → exchange `thumbd`, queue `thumbd.jobs`); change it only to run several deployments on one vhost",
    },
    Key {
        name: "storage_url",
        default: "",
        help: "blob store: unset = `blobs/` in the data dir, `file:///ABS/PATH`, or `s3://BUCKET?endpoint=URL&region=R[&prefix=P]` (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    },
    Key {
        name: "durability",
        default: "full",
        help: "`full`: accepted jobs and thumbnails survive power loss (SQLite FULL, fsync); `process`: they survive thumbd being killed, not the machine stopping (faster writes)",
    },
    Key {
        name: "jwt_secret",
        default: "",
        help: "HS256 key; unset = a random secret kept in `DATA_DIR/jwt-secret`",
    },
    Key {
        name: "url_signing_key",
        default: "",
        help: "HMAC-SHA256 key (at least 32 bytes): result URLs carry `expires` and `sig`, and a GET with a valid signature needs no token (README, Signed URLs); unset = no signed URLs",
    },
    Key {
        name: "url_ttl",
        default: "3600",
        help: "seconds a signed URL stays valid",
    },
    Key {
        name: "jwt_public_key",
        default: "",
        help: "PEM file of an RS256 or EdDSA public key; replaces the HS256 secret for checking tokens",
    },
    Key {
        name: "jwt_algorithm",
        default: "rs256",
        help: "algorithm of `jwt_public_key`: rs256 or eddsa",
    },
    Key {
        name: "jwt_issuer",
        default: "",
        help: "when set, tokens must carry this `iss` claim",
    },
    Key {
        name: "jwt_audience",
        default: "",
        help: "when set, tokens must carry this `aud` claim (or a list naming it)",
    },
    Key {
        name: "tenant_claim",
        default: "tenant",
        help: "the token claim naming the caller's tenant (1-64 of A-Z a-z 0-9 . _ -); a token without it belongs to the tenant `default`",
    },
    Key {
        name: "auth",
        default: "on",
        help: "`off` turns authentication off (every request allowed), with a loud warning",
    },
    Key {
        name: "public_reads",
        default: "false",
        help: "GET thumbnails and job status without a token",
    },
    Key {
        name: "workers",
        default: "",
        help: "images decoded and resized at once per process; unset = number of cores",
    },
    Key {
        name: "async_threads",
        default: "",
        help: "threads of the async runtime (HTTP, database, queue); unset = 1 per 4 image threads (at least 1) for `serve` and `worker`, the number of cores for `api`",
    },
    Key {
        name: "prefetch",
        default: "",
        help: "jobs a worker leases at once (I/O overlaps image work), and in `serve` also how many waiting creates it runs straight from their requests; unset = 2 × workers",
    },
    Key {
        name: "downloads",
        default: "16",
        help: "URL sources a worker downloads at once, in slots of their own (a slow source never holds a `prefetch` slot)",
    },
    Key {
        name: "downloads_per_tenant",
        default: "8",
        help: "of those, how many one tenant may hold at once (its next URL source waits in the queue)",
    },
    Key {
        name: "pixel_budget",
        default: "100000000",
        help: "decoding memory at once across a process's jobs, in pixels of 4 bytes (default 400 MB); a job counts what its decode really holds (a progressive JPEG's coefficients too)",
    },
    Key {
        name: "max_body_bytes",
        default: "5242880",
        help: "largest accepted image, in bytes (413 above)",
    },
    Key {
        name: "max_pixels",
        default: "50000000",
        help: "largest accepted image, in pixels, checked from the header",
    },
    Key {
        name: "accept_formats",
        default: "png,jpeg",
        help: "input formats accepted, comma-separated: png, jpeg, webp, gif (GIF and animated WebP: the first frame, and the job result says `animated: true`); another type is refused as unsupported (422 `InvalidHeaderValue` for its Content-Type, `InvalidThumbnailFormat` for its bytes)",
    },
    Key {
        name: "thumbnail_size",
        default: "330",
        help: "box the thumbnail fits in: `330` or `WIDTHxHEIGHT`",
    },
    Key {
        name: "output_format",
        default: "png",
        help: "`png`, `jpeg[:QUALITY]` (default 85), `webp[:QUALITY]` (lossy, default 80) or `webp:lossless`; QUALITY is 1-100, lowered in steps when a thumbnail is over `budget_bytes`",
    },
    Key {
        name: "profiles",
        default: "",
        help: "named sets of renditions a create picks with `profile=NAME`: `NAME=SIZE:FORMAT[:QUALITY],…;NAME=…` (in the file, `[profiles.NAME]` tables with `renditions = [\"80:webp\", …]`); SIZE is the box edge (or `WIDTHxHEIGHT`), FORMAT `png`, `jpeg`, `webp` (lossy unless QUALITY is `lossless`). The built-in `default` is `thumbnail_size` in `output_format`",
    },
    Key {
        name: "default_profile",
        default: "default",
        help: "the profile of creates that name none: `NAME`, or per environment `development=NAME,production=NAME` (an environment left out gets `default`)",
    },
    Key {
        name: "budget_bytes",
        default: "300000",
        help: "size the encoder aims under; 0 = no budget",
    },
    Key {
        name: "resize_space",
        default: "srgb",
        help: "`srgb`: Lanczos3 on sRGB values, as vipsthumbnail and Pillow do; `linear`: in linear light, so text, line art and fine bright-on-dark detail keep their weight (about twice the resize time and memory)",
    },
    Key {
        name: "wait",
        default: "2",
        help: "seconds a create waits for its job before answering 202",
    },
    Key {
        name: "max_wait",
        default: "10",
        help: "cap on `Prefer: wait=N`, in seconds",
    },
    Key {
        name: "upload_ttl",
        default: "3600",
        help: "seconds an upload ticket (`POST /v1/uploads`) stays valid; expired uploads are deleted",
    },
    Key {
        name: "allow_private_sources",
        default: "false",
        help: "let URL sources reach loopback, private and link-local addresses (tests; never in production)",
    },
    Key {
        name: "source_timeout",
        default: "30",
        help: "seconds a worker may spend downloading a URL source (its size is capped by max_body_bytes)",
    },
    Key {
        name: "webhook_retry_schedule",
        default: "5,30,120,600,3600,21600",
        help: "seconds between a webhook delivery's attempts, comma-separated: one attempt more than waits (the default: 7 attempts over 7 h 12 min)",
    },
    Key {
        name: "webhook_concurrency",
        default: "8",
        help: "webhook deliveries a process posts at once (besides image jobs: a slow endpoint never holds them back)",
    },
    Key {
        name: "allow_private_webhooks",
        default: "false",
        help: "let webhook URLs reach loopback, private and link-local addresses (tests, closed networks)",
    },
    Key {
        name: "job_timeout",
        default: "30",
        help: "seconds one image may take from decode to encode; past it the job fails `ProcessingTimeout`",
    },
    Key {
        name: "rate_limit",
        default: "50",
        help: "requests per second per client (token subject, else IP address) on /v1, bursts of twice that; 0 = off",
    },
    Key {
        name: "job_retention_hours",
        default: "168",
        help: "finished job records are kept this long (at least 24)",
    },
    Key {
        name: "log_format",
        default: "text",
        help: "text or json (to stderr); the level comes from RUST_LOG (default info)",
    },
];

/// Settings that may come from a file named by `THUMBD_<KEY>_FILE`: the secrets and the URLs
/// that carry passwords.
pub const FILE_KEYS: &[&str] = &["jwt_secret", "url_signing_key", "database_url", "amqp_url"];

/// An error for `var` if it looks like a misspelled setting: a `THUMBD_` variable that is
/// no setting (nor a secret's `_FILE`) but within two edits of one. Other `THUMBD_`
/// variables pass silently: Kubernetes makes `THUMBD_SERVICE_HOST` and the like for a
/// service named `thumbd`, and tools have their own.
pub(super) fn misspelled(var: &str) -> Option<String> {
    let name = var.strip_prefix("THUMBD_")?;
    let name = name
        .strip_suffix("_FILE")
        .unwrap_or(name)
        .to_ascii_lowercase();
    if KEYS.iter().any(|k| k.name == name) {
        return None;
    }
    let (distance, closest) = KEYS
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&name, k.name), k.name))
        .min()?;
    (distance <= 2).then(|| {
        format!(
            "{var} is not a setting: did you mean {}? (README, Configuration)",
            env_var(closest)
        )
    })
}

/// The environment variable of a key.
pub fn env_var(key: &str) -> String {
    format!("THUMBD_{}", key.to_ascii_uppercase())
}

#[cfg(test)]
/// The README's settings table rows (between `<!-- settings:table -->` markers).
pub fn markdown_table() -> String {
    let header = "| TOML key | environment variable | default | meaning |\n|---|---|---|---|\n";
    header.to_owned()
        + &KEYS
            .iter()
            .map(|k| {
                let default = if k.default.is_empty() {
                    "unset".to_owned()
                } else {
                    format!("`{}`", k.default)
                };
                format!(
                    "| `{}` | `{}` | {default} | {} |\n",
                    k.name,
                    env_var(k.name),
                    k.help
                )
            })
            .collect::<String>()
}
